// Loads a YAML config file: parse with positions → schema (both in yaml.ts) → resolve. Every
// problem becomes a Diagnostic at the line and column of the key that causes it.
import { createHash } from 'node:crypto'
import { configSchema } from './schema.ts'
import { resolveConfig } from './resolve.ts'
import { checkSchema, parseYaml, readYamlFile } from './yaml.ts'
import { ConfigError, formatPath, inFileOrder, type ConfigPath, type Diagnostic, type Severity } from './diagnostics.ts'
import type { RuntimeConfig } from './runtime.ts'

export interface LoadedConfig {
  config: RuntimeConfig
  warnings: Diagnostic[]
}

/** Parses and resolves config text; throws ConfigError with every error found. */
/**
 * `readFiles: false` checks the text alone, for a config whose files (TLS certificates) sit where
 * it will run, not here: a config read from a Kubernetes ConfigMap.
 */
export function parseConfigText (text: string, file: string, { readFiles = true } = {}): LoadedConfig {
  const yaml = parseYaml(text, file)
  const diagnostics: Diagnostic[] = [...yaml.warnings]
  // DESIGN.md §11: a diagnostic points at the offending key itself (a list item has no key: at the item).
  const report = (severity: Severity, path: ConfigPath, message: string): void => {
    const { line, col } = yaml.locator.at(path, { key: true })
    diagnostics.push({ severity, file, line, col, path: formatPath(path), message })
  }
  const data = checkSchema(configSchema, yaml.raw, (path, message) => report('error', path, message))
  if (data === undefined) throw new ConfigError(diagnostics)
  const source = {
    path: file,
    hash: createHash('sha256').update(text).digest('hex').slice(0, 12),
    loadedAt: new Date().toISOString()
  }
  const config = resolveConfig(data, source, report, { readFiles })
  if (diagnostics.some((d) => d.severity === 'error')) throw new ConfigError(diagnostics)
  return { config, warnings: inFileOrder(diagnostics) }
}

export async function loadConfigFile (file: string): Promise<LoadedConfig> {
  return parseConfigText(await readYamlFile(file, 'config'), file)
}
