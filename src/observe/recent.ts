// Outcomes of the last minutes, for the live admin page: one small count table per minute in a
// ring, so memory is bounded by minutes × outcomes whatever the traffic.

const MINUTE_MS = 60_000

export class RecentOutcomes {
  readonly windowMinutes: number
  readonly #minutes: Array<{ minute: number, counts: Map<string, number> }>
  readonly #now: () => number

  constructor (windowMinutes = 10, now: () => number = Date.now) {
    this.windowMinutes = windowMinutes
    this.#now = now
    this.#minutes = Array.from({ length: windowMinutes }, () => ({ minute: -1, counts: new Map() }))
  }

  add (outcome: string): void {
    const minute = Math.floor(this.#now() / MINUTE_MS)
    const slot = this.#minutes[minute % this.windowMinutes]!
    if (slot.minute !== minute) {
      slot.minute = minute
      slot.counts.clear()
    }
    slot.counts.set(outcome, (slot.counts.get(outcome) ?? 0) + 1)
  }

  /** Counts by outcome over the window. */
  counts (): Record<string, number> {
    const oldest = Math.floor(this.#now() / MINUTE_MS) - this.windowMinutes + 1
    const total: Record<string, number> = {}
    for (const slot of this.#minutes) {
      if (slot.minute < oldest) continue
      for (const [outcome, n] of slot.counts) total[outcome] = (total[outcome] ?? 0) + n
    }
    return total
  }
}
