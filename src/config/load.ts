// Loads a YAML config file: parse with positions → schema → resolve. Every problem becomes a
// Diagnostic at the line and column of the key that causes it.
import { readFile } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { LineCounter, parseDocument } from 'yaml'
import type { z } from 'zod'
import { configSchema } from './schema.ts'
import { resolveConfig } from './resolve.ts'
import { Locator } from './locate.ts'
import { invalidValueMessage, yamlDiagnostics } from './messages.ts'
import { ConfigError, didYouMean, formatPath, inFileOrder, type ConfigPath, type Diagnostic, type Severity } from './diagnostics.ts'
import type { RuntimeConfig } from './runtime.ts'

export interface LoadedConfig {
  config: RuntimeConfig
  warnings: Diagnostic[]
}

/** The keys an object schema accepts at `path`, for "did you mean" (the doctor's chain files use it too). */
export function knownKeys (schema: z.ZodType, path: ConfigPath): string[] {
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
    void segment
  }
  unwrap()
  const def = node?._zod?.def
  return def?.type === 'object' ? Object.keys(def.shape) : []
}

export function valueAt (root: unknown, path: ConfigPath): unknown {
  let node = root
  for (const segment of path) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<string | number, unknown>)[segment]
  }
  return node
}

/** Parses and resolves config text; throws ConfigError with every error found. */
export function parseConfigText (text: string, file: string): LoadedConfig {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true })
  const locator = new Locator(doc, lines)
  const diagnostics: Diagnostic[] = yamlDiagnostics(doc, lines, text, file, locator)
  if (diagnostics.some((d) => d.severity === 'error')) throw new ConfigError(diagnostics)

  // DESIGN.md §11: a diagnostic points at the offending key itself (a list item has no key: at the item).
  const report = (severity: Severity, path: ConfigPath, message: string): void => {
    const { line, col } = locator.at(path, { key: true })
    diagnostics.push({ severity, file, line, col, path: formatPath(path), message })
  }

  const raw: unknown = doc.toJS() ?? {}
  const result = configSchema.safeParse(raw)
  if (!result.success) {
    for (const issue of result.error.issues) {
      const path = issue.path as ConfigPath
      if (issue.code === 'unrecognized_keys') {
        const known = knownKeys(configSchema, path)
        for (const key of issue.keys) {
          const hint = didYouMean(key, known)
          report('error', [...path, key], `unknown key '${key}'${hint === undefined ? '' : ` (did you mean '${hint}'?)`}`)
        }
      } else if (issue.code === 'invalid_type' && valueAt(raw, path) === undefined) {
        report('error', path, `missing required key '${String(path[path.length - 1])}'`)
      } else if (issue.code === 'invalid_value') {
        report('error', path, invalidValueMessage(issue, valueAt(raw, path)))
      } else {
        report('error', path, issue.message)
      }
    }
    throw new ConfigError(diagnostics)
  }
  const source = {
    path: file,
    hash: createHash('sha256').update(text).digest('hex').slice(0, 12),
    loadedAt: new Date().toISOString()
  }
  const config = resolveConfig(result.data, source, report)
  if (diagnostics.some((d) => d.severity === 'error')) throw new ConfigError(diagnostics)
  return { config, warnings: inFileOrder(diagnostics) }
}

export async function loadConfigFile (file: string): Promise<LoadedConfig> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message
    throw new ConfigError([{ severity: 'error', file, line: 1, col: 1, path: '', message: `cannot read config: ${reason}` }])
  }
  return parseConfigText(text, file)
}
