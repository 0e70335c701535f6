// Durations as the doctor prints them. 0 is a real value here (a pool that never reuses), so it
// reads `0s`, not the `0ms` of config messages; `null` is unlimited and `undefined` unknown.
import { formatDuration } from '../config/units.ts'

export function fmt (ms: number | null | undefined): string {
  if (ms === undefined) return '?'
  if (ms === 0) return '0s'
  return formatDuration(ms)
}

export const sec = (seconds: number): number => seconds * 1000
