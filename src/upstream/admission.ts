// Admission control per upstream (`limits`): at most maxConcurrent requests in flight, at most
// maxQueued waiting for a slot, each for at most queueTimeout. Beyond that: overloaded.

export interface QueueTicket {
  /** Leaves the queue (the client went away, or the request ended otherwise). */
  cancel (): void
}

interface Waiter {
  admit: () => void
  timer: NodeJS.Timeout
}

export class Admission {
  readonly maxConcurrent: number
  readonly maxQueued: number
  readonly queueTimeoutMs: number
  active = 0
  readonly #queue = new Set<Waiter>()
  readonly #onDepth: (depth: number) => void

  constructor (limits: { maxConcurrent: number, maxQueued: number, queueTimeoutMs: number }, onDepth: (depth: number) => void) {
    this.maxConcurrent = limits.maxConcurrent
    this.maxQueued = limits.maxQueued
    this.queueTimeoutMs = limits.queueTimeoutMs
    this.#onDepth = onDepth
  }

  get queued (): number { return this.#queue.size }

  /** Takes a slot now if there is one. */
  tryEnter (): boolean {
    if (this.active >= this.maxConcurrent || this.#queue.size > 0) return false
    this.active++
    return true
  }

  /** Waits for a slot; null when the queue is full. `admit` runs holding the slot. */
  wait (admit: () => void, timedOut: () => void): QueueTicket | null {
    if (this.#queue.size >= this.maxQueued) return null
    const waiter: Waiter = {
      admit,
      timer: setTimeout(() => {
        this.#queue.delete(waiter)
        this.#onDepth(this.#queue.size)
        timedOut()
      }, this.queueTimeoutMs)
    }
    this.#queue.add(waiter)
    this.#onDepth(this.#queue.size)
    return {
      cancel: () => {
        if (!this.#queue.delete(waiter)) return
        clearTimeout(waiter.timer)
        this.#onDepth(this.#queue.size)
      }
    }
  }

  /** Frees a slot and hands it to the first waiter, if any. */
  leave (): void {
    this.active--
    for (const waiter of this.#queue) {
      this.#queue.delete(waiter)
      clearTimeout(waiter.timer)
      this.#onDepth(this.#queue.size)
      this.active++
      waiter.admit()
      return
    }
  }
}
