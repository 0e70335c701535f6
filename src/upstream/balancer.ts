// Endpoint selection behind one method (like Caddy's Selector): pick(endpoints) → one of them.

export interface Balanced {
  /** Requests in flight on this endpoint, kept by the caller. */
  readonly inflight: number
}

export interface Balancer<E extends Balanced> {
  pick (endpoints: readonly E[]): E | undefined
}

/** Power of two choices: two distinct random endpoints, the one with fewer requests in flight. */
export class LeastRequest<E extends Balanced> implements Balancer<E> {
  readonly #random: () => number
  constructor (random: () => number = Math.random) { this.#random = random }

  pick (endpoints: readonly E[]): E | undefined {
    const n = endpoints.length
    if (n <= 1) return endpoints[0]
    const i = Math.floor(this.#random() * n)
    const j = (i + 1 + Math.floor(this.#random() * (n - 1))) % n // distinct from i
    const a = endpoints[i]!
    const b = endpoints[j]!
    return b.inflight < a.inflight ? b : a
  }
}

export class RoundRobin<E extends Balanced> implements Balancer<E> {
  #next = 0
  pick (endpoints: readonly E[]): E | undefined {
    if (endpoints.length === 0) return undefined
    const e = endpoints[this.#next % endpoints.length]
    this.#next = (this.#next + 1) % endpoints.length
    return e
  }
}
