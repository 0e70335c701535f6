// Prints the JSON Schema of the config file for editors (DESIGN.md §3), generated from the zod
// schema so that it cannot drift from what `check` accepts. `npm run schema` writes it to
// longhaul.schema.json; a test compares that file with this output.
import { z } from 'zod'
import { configSchema } from './schema.ts'

/** The JSON Schema text: pretty-printed, with a trailing newline. */
export function configJsonSchema (): string {
  // io: 'input' describes what a user writes (a duration string), not what it parses into.
  const schema = z.toJSONSchema(configSchema, { io: 'input' })
  return `${JSON.stringify({ $schema: schema.$schema, title: 'longhaul configuration', ...schema }, null, 2)}\n`
}

if (import.meta.main) process.stdout.write(configJsonSchema())
