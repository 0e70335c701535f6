// Config diagnostics: every problem found in a config file is reported as
// `FILE:LINE:COL path: message`, pointing at the offending key itself.

export type Severity = 'error' | 'warning'
export type ConfigPath = readonly (string | number)[]

export interface Diagnostic {
  severity: Severity
  file: string
  line: number
  col: number
  /** Dotted path with indices, e.g. `routes[0].timeouts.request`; empty for the whole file. */
  path: string
  message: string
}

export function formatPath (path: ConfigPath): string {
  let out = ''
  for (const segment of path) {
    out += typeof segment === 'number' ? `[${segment}]` : (out === '' ? segment : `.${segment}`)
  }
  return out
}

export function formatDiagnostic (d: Diagnostic): string {
  const where = `${d.file}:${d.line}:${d.col}`
  const prefix = d.severity === 'warning' ? 'warning: ' : ''
  return d.path === '' ? `${where} ${prefix}${d.message}` : `${where} ${d.path}: ${prefix}${d.message}`
}

/** Thrown when a config cannot be used; carries every error (and the warnings found on the way). */
export class ConfigError extends Error {
  readonly diagnostics: readonly Diagnostic[]
  constructor (diagnostics: readonly Diagnostic[]) {
    const errors = diagnostics.filter((d) => d.severity === 'error')
    super(inFileOrder(errors).map(formatDiagnostic).join('\n'))
    this.name = 'ConfigError'
    this.diagnostics = inFileOrder(diagnostics)
  }
}

/** Sorted as a reader meets them: file by file (in the order first named), then by line and column. */
export function inFileOrder (diagnostics: readonly Diagnostic[]): Diagnostic[] {
  const files = [...new Set(diagnostics.map((d) => d.file))]
  return [...diagnostics].sort((a, b) => files.indexOf(a.file) - files.indexOf(b.file) || a.line - b.line || a.col - b.col)
}

/** Levenshtein distance, for "did you mean". */
function distance (a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1))
      prev = current
    }
  }
  return row[b.length]!
}

/**
 * The closest candidate when it is close enough to be a typo, else undefined. A candidate that
 * starts the word or that the word starts (`warning` for `warn`) counts as close.
 */
export function didYouMean (word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined
  let bestDistance = Infinity
  const lower = word.toLowerCase()
  for (const candidate of candidates) {
    const c = candidate.toLowerCase()
    const prefix = Math.min(c.length, lower.length) >= 3 && (c.startsWith(lower) || lower.startsWith(c))
    const d = prefix ? 1 : distance(word, candidate)
    if (d < bestDistance) { best = candidate; bestDistance = d }
  }
  const tolerance = Math.max(2, Math.floor(word.length / 3))
  return bestDistance <= tolerance ? best : undefined
}
