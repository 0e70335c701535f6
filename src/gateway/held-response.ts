// The first-event gate (routes[].sse.holdHeaders): an event stream's response headers, and what
// the upstream sends before its first answer event (comments, Anthropic's preamble), held back
// from the client for at most the hold time, so that a failure before that event can still be
// retried or answered with a status instead of a cut 200. The copy is bounded: a stream that sends
// more than MAX_HELD_BYTES before answering is let through at once.
import type { Dispatcher } from 'undici'
import type { ResponseHeaders } from './attempts.ts'

/** Comments and preamble events are small: more than this before the first answer is let through. */
export const MAX_HELD_BYTES = 64 * 1024

export class HeldResponse {
  readonly statusCode: number
  readonly headers: ResponseHeaders
  readonly controller: Dispatcher.DispatchController
  readonly chunks: Buffer[] = []
  #bytes = 0
  readonly #timer: NodeJS.Timeout

  /** `expired` runs when the hold time is up without a first event. */
  constructor (statusCode: number, headers: ResponseHeaders, controller: Dispatcher.DispatchController, holdMs: number, expired: () => void) {
    this.statusCode = statusCode
    this.headers = headers
    this.controller = controller
    this.#timer = setTimeout(expired, holdMs)
  }

  /** Keeps a chunk; false once the held bytes are over the bound. */
  add (chunk: Buffer): boolean {
    this.chunks.push(chunk)
    this.#bytes += chunk.length
    return this.#bytes <= MAX_HELD_BYTES
  }

  stop (): void { clearTimeout(this.#timer) }
}
