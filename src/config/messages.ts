// Plain-words messages for what the YAML parser and the schema report: a syntax error says what
// is wrong and where in the config it is; a value outside a fixed set gets a "did you mean".
import type { Document, LineCounter, YAMLError } from 'yaml'
import type { z } from 'zod'
import { didYouMean, formatPath, type Diagnostic } from './diagnostics.ts'
import type { Locator } from './locate.ts'

/** What a YAML error means, in the words of someone editing the file. */
function plainYaml (e: YAMLError, text: string, locator: Locator): string {
  const at = text.slice(e.pos[0], e.pos[1])
  const first = e.message.split('\n')[0]!
  switch (e.code) {
    case 'TAB_AS_INDENT':
      return 'a tab in the indentation: YAML indents with spaces only'
    case 'DUPLICATE_KEY': {
      const key = locator.pathAt(e.pos[0]).at(-1)
      return `key '${String(key ?? at)}' appears twice in the same map: the second would silently replace the first`
    }
    case 'BLOCK_AS_IMPLICIT_KEY':
    case 'MULTILINE_IMPLICIT_KEY':
      return 'this line is not indented like the lines around it (a list item or a key out of line), or a key lacks its \':\''
    case 'MISSING_CHAR':
      if (/closing "/.test(first)) return 'a string opened with " is never closed'
      if (/closing '/.test(first)) return 'a string opened with \' is never closed'
      if (/map values/.test(first)) return 'a key without its \':\', or a line not indented like the lines around it'
      return first
    case 'BAD_INDENT':
      if (/end with a \}/.test(first)) return 'a { opened earlier is not closed with } (or the lines inside it are not indented)'
      if (/end with a \]/.test(first)) return 'a [ opened earlier is not closed with ] (or the lines inside it are not indented)'
      return 'wrong indentation: this line does not line up with the lines around it'
    case 'BAD_SCALAR_START':
      return `a plain value cannot start with '${at}': put the value in quotes`
    case 'UNEXPECTED_TOKEN':
      return at.trim() === '' ? first : `unexpected '${at.trim()}' here`
    default:
      return first
  }
}

/** The parser's errors and warnings, one per line (the first: the others on it follow from it). */
export function yamlDiagnostics (doc: Document, lines: LineCounter, text: string, file: string, locator: Locator): Diagnostic[] {
  const seen = new Set<number>()
  const out: Diagnostic[] = []
  for (const e of [...doc.errors, ...doc.warnings]) {
    // An unclosed quote is noticed at the end of the file: point at the quote that opened it.
    const quote = e.code === 'MISSING_CHAR' ? /closing (["'])/.exec(e.message)?.[1] : undefined
    const offset = quote === undefined ? e.pos[0] : Math.max(0, text.lastIndexOf(quote, e.pos[0] - 1))
    // With prettyErrors off, yaml leaves linePos unset: the offset is the position.
    const pos = lines.linePos(offset)
    if (seen.has(pos.line)) continue
    seen.add(pos.line)
    const severity = doc.errors.includes(e as never) ? 'error' : 'warning'
    const path = locator.pathAt(offset)
    out.push({ severity, file, line: pos.line, col: pos.col, path: formatPath(path), message: `YAML: ${plainYaml(e, text, locator)}` })
    // The rest of the file is inside that string: what else the parser says follows from it.
    if (quote !== undefined) break
  }
  return out
}

/** A value outside a fixed set (an enum, a literal): what was written, the likely one, the set. */
export function invalidValueMessage (issue: z.core.$ZodIssueInvalidValue, value: unknown): string {
  const allowed = issue.values.map((v) => String(v))
  const hint = typeof value === 'string' ? didYouMean(value, allowed) : undefined
  const written = typeof value === 'string' ? `'${value}'` : JSON.stringify(value)
  const expected = allowed.length === 1 ? `'${allowed[0]!}'` : `one of ${allowed.map((v) => `'${v}'`).join(', ')}`
  return `unknown value ${written}${hint === undefined ? '' : ` (did you mean '${hint}'?)`}: expected ${expected}`
}
