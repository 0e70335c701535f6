// Rapid reset across connections (CVE-2023-44487): nghttp2 bounds the streams one session opens
// and resets, but nine sessions each under that bound still made thousands of upstream requests
// and slowed every other client. This is the gateway-wide bound: one token bucket for every
// stream a client resets before its response ended, on all HTTP/2 sessions of the process. While
// the bucket is empty, a session that reset at least `perConnection` streams in the last second
// is an abuser and gets GOAWAY ENHANCE_YOUR_CALM; a client that cancels now and then (a user
// pressing stop) is far below that and is never cut for another client's flood.

import type { ResetFloodLimits } from '../config/runtime.ts'

type Clock = () => number

/** The gateway-wide token bucket; one per process, shared by every HTTP/2 listener. */
export class ResetBudget {
  readonly limits: ResetFloodLimits
  readonly #now: Clock
  #tokens: number
  #refilledAt: number

  constructor (limits: ResetFloodLimits, now: Clock = () => performance.now()) {
    this.limits = limits
    this.#now = now
    this.#tokens = limits.burst
    this.#refilledAt = now()
  }

  now (): number { return this.#now() }

  /** Takes one token for a client reset; false when the gateway-wide budget is spent. */
  take (): boolean {
    const now = this.#now()
    this.#tokens = Math.min(this.limits.burst, this.#tokens + (now - this.#refilledAt) * this.limits.rate / 1000)
    this.#refilledAt = now
    if (this.#tokens < 1) return false
    this.#tokens -= 1
    return true
  }

  /** A session's own count of client resets over the last second (a fixed one-second window). */
  session (): SessionResets {
    return new SessionResets(this)
  }
}

export class SessionResets {
  readonly #budget: ResetBudget
  #windowStart = -Infinity
  #inWindow = 0

  constructor (budget: ResetBudget) {
    this.#budget = budget
  }

  /** Counts one client reset on this session; true when the session must be cut as an abuser. */
  reset (): boolean {
    const now = this.#budget.now()
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now
      this.#inWindow = 0
    }
    this.#inWindow++
    return !this.#budget.take() && this.#inWindow >= this.#budget.limits.perConnection
  }
}
