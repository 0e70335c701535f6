// Durations and sizes as written in the config: always with a unit, never a bare number
// (a bare `30` is seconds in one proxy and milliseconds in the next: users guess wrong).

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const SIZE_UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/
const SIZE_RE = /^(\d+)(B|KiB|MiB|GiB)$/

/** Parses `250ms`, `30s`, `5m`, `1h` (also `1.5s`) into whole milliseconds; a string error otherwise. */
export function parseDuration (text: string): number | string {
  const m = DURATION_RE.exec(text.trim())
  if (m === null) return `invalid duration '${text}': write a number with a unit (ms, s, m, h), e.g. '30s'`
  const ms = Math.round(Number(m[1]) * DURATION_UNITS[m[2]!]!)
  return ms
}

/** Parses `16KiB`, `100MiB`, `1GiB`, `512B` into bytes; a string error otherwise. */
export function parseSize (text: string): number | string {
  const m = SIZE_RE.exec(text.trim())
  if (m === null) return `invalid size '${text}': write a whole number with a unit (B, KiB, MiB, GiB), e.g. '16KiB'`
  return Number(m[1]) * SIZE_UNITS[m[2]!]!
}

/** Formats milliseconds back to the shortest exact unit, for messages: 90000 → "90s". */
export function formatDuration (ms: number | null): string {
  if (ms === null) return 'none'
  if (ms !== 0 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`
  if (ms !== 0 && ms % 60_000 === 0) return `${ms / 60_000}m`
  if (ms !== 0 && ms % 1000 === 0) return `${ms / 1000}s`
  return `${ms}ms`
}
