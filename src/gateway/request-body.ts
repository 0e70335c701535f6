// A request's body on its way upstream: none, a small one read whole so a retry can send it
// again, or a stream sent once with backpressure. bodyIdleTimeout runs only while the gateway
// waits on the client, and downstream.maxBodySize bounds both kinds.
import type { IncomingMessage } from 'node:http'
import type { RetryPolicy } from '../config/runtime.ts'
import { isIdempotent } from '../upstream/retry.ts'
import { tooLarge, type Passage } from './passage.ts'

export class RequestBody {
  readonly #passage: Passage
  readonly #req: IncomingMessage
  readonly #maxBytes: number
  /** What undici sends: null (no body), a Buffer kept for retries, or a stream sent once. */
  value: Buffer | AsyncGenerator<Buffer> | null = null
  #started = false

  constructor (passage: Passage, maxBytes: number) {
    this.#passage = passage
    this.#req = passage.req
    this.#maxBytes = maxBytes
  }

  /** The body can be sent again: there is none, it is buffered, or undici never started reading it. */
  replayable (): boolean { return this.value === null || Buffer.isBuffer(this.value) || !this.#started }

  /**
   * Decides how the body goes: a body small enough, on a request that may be retried, is read
   * whole first, and the answer is then a promise: it resolves false when the request ended
   * while its body arrived. Otherwise (no body, or one streamed) the answer is true at once, so
   * a request without a body does not wait a turn of the event loop.
   */
  prepare (policy: RetryPolicy): true | Promise<boolean> {
    const req = this.#req
    const declared = req.headers['content-length']
    const hasBody = (declared !== undefined && declared !== '0') || req.headers['transfer-encoding'] !== undefined
    if (!hasBody) return true
    const retriable = policy.attempts > 1 || isIdempotent(req.method ?? 'GET')
    if (!retriable || declared === undefined || Number(declared) > policy.maxBufferedBody) {
      this.value = this.#stream()
      return true
    }
    return this.#readWhole()
  }

  async #readWhole (): Promise<boolean> {
    const parts: Buffer[] = []
    try {
      for await (const chunk of this.#stream()) parts.push(chunk)
    } catch {
      return false
    }
    if (this.#passage.ending !== null) return false
    this.value = Buffer.concat(parts)
    return true
  }

  /**
   * The body, streamed with backpressure: undici pulls the next chunk when it can write it, and
   * only while the gateway waits on the client does bodyIdleTimeout run.
   */
  async * #stream (): AsyncGenerator<Buffer> {
    // Runs on undici's first pull: until then the body was never sent and can go with a retry.
    this.#started = true
    // destroyOnReturn false: an aborted upload must not destroy the socket the error response uses.
    const chunks = this.#req.iterator({ destroyOnReturn: false })
    const passage = this.#passage
    const deadline = passage.deadline!
    try {
      for (;;) {
        deadline.awaitingBody()
        let next: IteratorResult<Buffer>
        try {
          next = await chunks.next()
        } catch (err) {
          passage.finish({ outcome: 'client_aborted' })
          throw err
        }
        deadline.bodyArrived()
        if (next.done === true || passage.ending !== null) return
        passage.bytesIn += next.value.length
        if (passage.bytesIn > this.#maxBytes) {
          passage.finish(tooLarge(this.#maxBytes))
          throw new Error('request body over downstream.maxBodySize')
        }
        yield next.value
      }
    } finally {
      deadline.bodyArrived()
    }
  }
}
