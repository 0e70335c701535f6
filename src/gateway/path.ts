// The request path as the router sees it and the upstream receives it, so that a route prefix
// can be an access boundary: `/public/../admin`, `/public/%2e%2e/admin` and `/public%2F..%2Fadmin`
// all become `/admin` before any route is matched. What Envoy does with `normalize_path`,
// `merge_slashes` and `path_with_escaped_slashes_action: UNESCAPE_AND_FORWARD`, and what nginx
// does to `$uri`: a backend that decodes or resolves the path itself cannot see another path
// than the one that was routed.

/** Hex digit values, -1 for a non-hex byte. */
const HEX = new Int8Array(128).fill(-1)
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i
for (let i = 0; i < 6; i++) { HEX[0x41 + i] = 10 + i; HEX[0x61 + i] = 10 + i }

/** RFC 3986 §2.3 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved (c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e
}

/** Most paths have nothing to normalise: no `%`, no backslash, no `//`, no segment starting with a dot. */
const NEEDS_WORK = /[%\\]|\/\/|\/\./

export type NormalisedPath = { path: string } | { error: string }

/**
 * Normalises the path part of an origin-form target (no query; it starts with `/`):
 * 1. Percent-encoding (RFC 3986 §6.2.2.1-2): an encoded unreserved character is decoded
 *    (`%2e` → `.`, `%7E` → `~`), any other keeps its encoding with upper-case hex; a `%` not
 *    followed by two hex digits is an error.
 * 2. Encoded slashes `%2F` and backslashes `%5C`, and a raw `\`, become `/` (WHATWG URL treats a
 *    backslash as a slash in http URLs; so do many servers).
 * 3. Runs of slashes become one (`merge_slashes`).
 * 4. Dot-segments are removed (RFC 3986 §5.2.4); `..` never climbs above the root.
 */
export function normalisePath (raw: string): NormalisedPath {
  if (!NEEDS_WORK.test(raw)) return { path: raw }
  let decoded = ''
  for (let i = 0; i < raw.length; i++) {
    const ch = raw.charCodeAt(i)
    if (ch === 0x5c) { decoded += '/'; continue }
    if (ch !== 0x25) { decoded += raw[i]; continue }
    const hi = HEX[raw.charCodeAt(i + 1)] ?? -1
    const lo = HEX[raw.charCodeAt(i + 2)] ?? -1
    if (hi < 0 || lo < 0) return { error: `the path has a '%' not followed by two hex digits at offset ${i}` }
    const byte = hi * 16 + lo
    if (byte === 0x2f || byte === 0x5c) decoded += '/'
    else if (isUnreserved(byte)) decoded += String.fromCharCode(byte)
    else decoded += '%' + raw.slice(i + 1, i + 3).toUpperCase()
    i += 2
  }
  return { path: removeDotSegments(decoded) }
}

/** RFC 3986 §5.2.4 on an absolute path, with empty segments (merged slashes) dropped. */
function removeDotSegments (path: string): string {
  const out: string[] = []
  const segments = path.split('/')
  // segments[0] is the empty string before the leading slash.
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i]!
    const last = i === segments.length - 1
    if (segment === '..') {
      out.pop()
      if (last) out.push('')
    } else if (segment === '.') {
      if (last) out.push('')
    } else if (segment === '') {
      // `//` merges; a trailing slash stays.
      if (last) out.push('')
    } else {
      out.push(segment)
    }
  }
  return '/' + out.join('/')
}
