// A clock a unit test moves by hand: now() and timers, as the Deadline's Clock interface wants
// them. tick(ms) fires every timer that falls due, in order. `earlyMs` fires each timer that much
// before its instant, as Node's whole-millisecond timers may against performance.now().
import type { Clock } from '../../src/gateway/deadline.ts'

interface FakeTimer { readonly at: number, readonly fire: () => void }

export class FakeClock implements Clock {
  #now = 1000
  readonly #timers = new Set<FakeTimer>()
  readonly #earlyMs: number
  /** Timers set and cleared so far. */
  set = 0
  cleared = 0

  constructor (options: { earlyMs?: number } = {}) {
    this.#earlyMs = options.earlyMs ?? 0
  }

  now (): number { return this.#now }

  setTimeout (fire: () => void, ms: number): FakeTimer {
    const timer: FakeTimer = { at: this.#now + ms - this.#earlyMs, fire }
    this.#timers.add(timer)
    this.set++
    return timer
  }

  clearTimeout (timer: object): void {
    this.#timers.delete(timer as FakeTimer)
    this.cleared++
  }

  /** Moves time forward by ms, firing each timer due on the way at its own time. */
  tick (ms: number): void {
    const until = this.#now + ms
    for (;;) {
      let next: FakeTimer | undefined
      for (const t of this.#timers) if (t.at <= until && (next === undefined || t.at < next.at)) next = t
      if (next === undefined) break
      this.#now = next.at
      this.#timers.delete(next)
      next.fire()
    }
    this.#now = until
  }
}
