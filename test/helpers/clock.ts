// A clock a unit test moves by hand: now() and re-armable timers (refresh()), as the Deadline's
// Clock interface wants them. tick(ms) fires every timer that falls due, in order.
import type { Clock } from '../../src/gateway/deadline.ts'

interface FakeTimer { at: number, readonly ms: number, readonly fire: () => void, active: boolean, refresh (): FakeTimer }

export class FakeClock implements Clock {
  #now = 1000
  readonly #timers = new Set<FakeTimer>()

  now (): number { return this.#now }

  setTimeout (fire: () => void, ms: number): FakeTimer {
    const clock = this
    const timer: FakeTimer = {
      at: this.#now + ms,
      ms,
      fire,
      active: true,
      refresh () {
        timer.at = clock.#now + ms
        timer.active = true
        clock.#timers.add(timer)
        return timer
      }
    }
    this.#timers.add(timer)
    return timer
  }

  clearTimeout (timer: { refresh (): unknown }): void {
    (timer as FakeTimer).active = false
    this.#timers.delete(timer as FakeTimer)
  }

  /** Moves time forward by ms, firing each timer due on the way at its own time. */
  tick (ms: number): void {
    const until = this.#now + ms
    for (;;) {
      let next: FakeTimer | undefined
      for (const t of this.#timers) if (t.active && t.at <= until && (next === undefined || t.at < next.at)) next = t
      if (next === undefined) break
      this.#now = next.at
      next.active = false
      this.#timers.delete(next)
      next.fire()
    }
    this.#now = until
  }
}
