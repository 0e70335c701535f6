// The one YAML → zod → diagnostics pipeline, for longhaul's config (load.ts) and the doctor's
// chain files: YAML parsed with positions, then checked against a schema, every problem worded
// the same way (unknown key with a did-you-mean, missing required key) at its line and column.
import { readFile } from 'node:fs/promises'
import { LineCounter, parseDocument } from 'yaml'
import type { z } from 'zod'
import { Locator } from './locate.ts'
import { invalidValueMessage, yamlDiagnostics } from './messages.ts'
import { ConfigError, didYouMean, type ConfigPath, type Diagnostic } from './diagnostics.ts'

export interface YamlText {
  /** The document as plain data. */
  readonly raw: unknown
  readonly locator: Locator
  /** YAML warnings (an error in the YAML itself throws instead). */
  readonly warnings: Diagnostic[]
}

/** A file's text; one that cannot be read is a ConfigError naming it (`what`: config, chain file). */
export async function readYamlFile (file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message
    throw new ConfigError([{ severity: 'error', file, line: 1, col: 1, path: '', message: `cannot read ${what}: ${reason}` }])
  }
}

/** Parses YAML with positions; throws ConfigError with every YAML syntax error, in plain words. */
export function parseYaml (text: string, file: string): YamlText {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true })
  const locator = new Locator(doc, lines)
  const diagnostics = yamlDiagnostics(doc, lines, text, file, locator)
  if (diagnostics.some((d) => d.severity === 'error')) throw new ConfigError(diagnostics)
  return { raw: doc.toJS() ?? {}, locator, warnings: diagnostics }
}

/** Where a schema problem is reported: `key` when it names a key (an unknown one) rather than a value. */
export type SchemaReport = (path: ConfigPath, message: string, options: { key?: boolean }) => void

/** Checks data against a schema; each problem goes to `report`. Returns the parsed data, or undefined. */
export function checkSchema<S extends z.ZodType> (schema: S, raw: unknown, report: SchemaReport): z.output<S> | undefined {
  const result = schema.safeParse(raw)
  if (result.success) return result.data
  for (const issue of result.error.issues) {
    const path = issue.path as ConfigPath
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys(schema, path)
      for (const key of issue.keys) {
        const hint = didYouMean(key, known)
        report([...path, key], `unknown key '${key}'${hint === undefined ? '' : ` (did you mean '${hint}'?)`}`, { key: true })
      }
    } else if (issue.code === 'invalid_type' && valueAt(raw, path) === undefined) {
      report(path, `missing required key '${String(path[path.length - 1])}'`, {})
    } else if (issue.code === 'invalid_value') {
      report(path, invalidValueMessage(issue, valueAt(raw, path)), {})
    } else {
      report(path, issue.message, {})
    }
  }
  return undefined
}

/** The keys an object schema accepts at `path`, for "did you mean". */
function knownKeys (schema: z.ZodType, path: ConfigPath): string[] {
  let node: any = schema
  const unwrap = (): void => {
    for (;;) {
      const def = node?._zod?.def
      if (def === undefined) return
      if (['optional', 'default', 'prefault', 'nullable', 'readonly'].includes(def.type)) node = def.innerType
      else if (def.type === 'pipe') node = def.in
      else return
    }
  }
  for (const segment of path) {
    unwrap()
    const def = node?._zod?.def
    if (def?.type === 'object') node = def.shape[segment]
    else if (def?.type === 'array') node = def.element
    else if (def?.type === 'record') node = def.valueType
    else return []
  }
  unwrap()
  const def = node?._zod?.def
  return def?.type === 'object' ? Object.keys(def.shape) : []
}

function valueAt (root: unknown, path: ConfigPath): unknown {
  let node = root
  for (const segment of path) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<string | number, unknown>)[segment]
  }
  return node
}
