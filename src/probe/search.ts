// Finds one limit by trials: grow the duration (×4 from 1 s, capped at --max) until a trial is cut,
// then narrow the bracket [longest that survived, earliest cut seen] until it is within the
// precision. A cut's own time is the best split (an idle limit fires at its value), so the next
// trial goes just below it; without one (a request held past the probe's deadline) it bisects.
import type { TrialResult } from './trial.ts'

export const START_MS = 1000
export const GROWTH = 4
/** Trials one search may run at most: growth to 10 minutes takes 6, narrowing a few more. */
export const MAX_TRIALS = 14

/** The precision: ±5 % or ±250 ms, whichever is larger. */
export function toleranceMs (ms: number): number {
  return Math.max(250, Math.round(ms * 0.05))
}

export type SearchResult =
  /** limit within (lowMs, ms]; cut: the trial that showed it. */
  | { status: 'found', ms: number, lowMs: number, cut: Extract<TrialResult, { kind: 'cut' | 'hung' }>, trials: TrialResult[] }
  /** Every trial up to maxMs survived. */
  | { status: 'none', maxMs: number, trials: TrialResult[] }
  /** The run's time or the trial count ran out first; what is known so far. */
  | { status: 'unfinished', lowMs: number, highMs: number | null, cut: Extract<TrialResult, { kind: 'cut' | 'hung' }> | null, trials: TrialResult[], reason: string }

export interface SearchOptions {
  maxMs: number
  /** Whether the run may start another trial of this length (the run's own time bound). */
  mayRun: (ms: number) => boolean
}

export async function search (trial: (ms: number) => Promise<TrialResult>, o: SearchOptions): Promise<SearchResult> {
  const trials: TrialResult[] = []
  let low = 0
  let high: number | null = null
  let cut: Extract<TrialResult, { kind: 'cut' | 'hung' }> | null = null
  let next = Math.min(START_MS, o.maxMs)
  while (true) {
    if (trials.length >= MAX_TRIALS) return { status: 'unfinished', lowMs: low, highMs: high, cut, trials, reason: `${MAX_TRIALS} trials did not settle it (the cuts came at different times)` }
    if (!o.mayRun(next)) return { status: 'unfinished', lowMs: low, highMs: high, cut, trials, reason: 'the run\'s time bound came first' }
    const r = await trial(next)
    trials.push(r)
    if (r.kind === 'survived') {
      low = Math.max(low, next)
      if (high === null && next >= o.maxMs) return { status: 'none', maxMs: o.maxMs, trials }
    } else {
      // A cut may come a little after the trial's T (a timer's slack); it still bounds the limit from above.
      const at = r.kind === 'cut' ? r.atMs : next
      if (high === null || at <= high) {
        high = at
        cut = r
      }
      // A cut earlier than a duration that survived: the chain is not consistent; start the bracket again.
      if (high <= low) low = 0
    }
    if (high === null) {
      next = Math.min(next * GROWTH, o.maxMs)
      continue
    }
    const tol = toleranceMs(high)
    if (high - low <= tol) return { status: 'found', ms: high, lowMs: low, cut: await clearCut(trial, o, cut!, high, trials), trials }
    // Just below the observed cut when the cut had a time; else halfway.
    next = cut!.kind === 'cut' ? Math.max(high - tol, Math.round((low + high) / 2)) : Math.round((low + high) / 2)
  }
}

/**
 * A cut that came just as the trial itself ended (a trial length that equals the limit) makes poor
 * evidence: the target had finished too, so it cannot say whether the cut was in front of it. One
 * longer trial, when the run allows it, shows the cut alone.
 */
async function clearCut (trial: (ms: number) => Promise<TrialResult>, o: SearchOptions, cut: Extract<TrialResult, { kind: 'cut' | 'hung' }>, high: number, trials: TrialResult[]): Promise<Extract<TrialResult, { kind: 'cut' | 'hung' }>> {
  const tol = toleranceMs(high)
  const longer = Math.min(o.maxMs, high * 2)
  if (cut.kind !== 'cut' || cut.atMs < cut.ms - tol || longer <= cut.ms || !o.mayRun(longer) || trials.length >= MAX_TRIALS) return cut
  const r = await trial(longer)
  trials.push(r)
  return r.kind === 'cut' && Math.abs(r.atMs - high) <= tol ? r : cut
}
