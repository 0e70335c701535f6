// One request/response exchange of the demo upstream: its timers (all cleared when it ends), its
// byte counts, the fault it applied, and the single DemoRequestEnd it produces.
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { MAX_TIMER_MS } from './knobs.ts'
import type { DemoKnobs } from './knobs.ts'

export interface DemoRequestStart {
  id: number
  method: string
  path: string // the request target as received, query included
  headers: IncomingHttpHeaders
}

export interface DemoRequestEnd extends DemoRequestStart {
  completed: boolean // our response finished normally
  aborted: boolean // the peer closed the connection/request before our response finished
  bytesIn: number // request body bytes read
  bytesOut: number // response body bytes written (raw bytes for `malformed`)
  startedAt: number // performance.now()
  endedAt: number // performance.now()
  fault: string | null // the fault that acted: stall | reset | empty-reply | malformed | internal-error
}

export const MAX_JSON_BODY = 8 * 1024 * 1024
const MALFORMED = Buffer.from('HTTP/1.1 2x0 Bogus\r\nfoo\r\n\r\n')

/** One request/response exchange: its timers, its byte counts and its single end. */
export class Exchange {
  readonly id: number
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly socket: Socket
  readonly startedAt = performance.now()
  knobs: DemoKnobs | undefined
  ended = false
  selfClosed = false // we closed the connection on purpose (fault or close())
  fault: string | null = null
  bytesIn = 0
  bytesOut = 0
  readonly #timers = new Set<NodeJS.Timeout>()
  readonly #waiters = new Set<() => void>()

  constructor (id: number, req: IncomingMessage, res: ServerResponse) {
    this.id = id
    this.req = req
    this.res = res
    this.socket = req.socket
  }

  /** Resolves true after ms, or false as soon as the exchange ends. */
  sleep (ms: number): Promise<boolean> {
    if (this.ended) return Promise.resolve(false)
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#timers.delete(timer)
        this.#waiters.delete(wake)
        resolve(true)
      }, Math.min(ms, MAX_TIMER_MS))
      const wake = (): void => {
        clearTimeout(timer)
        this.#timers.delete(timer)
        resolve(false)
      }
      this.#timers.add(timer)
      this.#waiters.add(wake)
    })
  }

  /** Resolves when the exchange ends (the peer went away or close() was called). */
  hold (): Promise<void> {
    if (this.ended) return Promise.resolve()
    return new Promise((resolve) => void this.#waiters.add(resolve))
  }

  /** Writes and waits until the chunk is handed to the socket (backpressure); false once ended. */
  write (chunk: string | Buffer): Promise<boolean> {
    if (this.ended) return Promise.resolve(false)
    this.bytesOut += Buffer.byteLength(chunk)
    return new Promise((resolve) => {
      const wake = (): void => resolve(false)
      this.#waiters.add(wake)
      this.res.write(chunk, (err) => {
        this.#waiters.delete(wake)
        resolve(!err && !this.ended)
      })
    })
  }

  end (chunk?: string | Buffer): void {
    if (this.ended) return
    if (chunk !== undefined) this.bytesOut += Buffer.byteLength(chunk)
    this.res.end(chunk)
  }

  /** Sends the status line and headers (plus the knob headers); false if stall-after=0 held it. */
  async begin (status: number, headers: OutgoingHttpHeaders): Promise<boolean> {
    if (this.ended) return false
    const k = this.knobs
    const all: OutgoingHttpHeaders = { 'x-demo-request-id': String(this.id), ...headers }
    if (k?.retryAfter !== undefined) all['retry-after'] = k.retryAfter
    if (k?.keepAliveHint !== undefined) all['keep-alive'] = `timeout=${k.keepAliveHint}`
    this.res.writeHead(status, all)
    if (k?.stallAfter === 0) {
      this.fault = 'stall'
      this.res.flushHeaders()
      await this.hold()
      return false
    }
    return true
  }

  async json (status: number, body: unknown): Promise<void> {
    const data = JSON.stringify(body)
    const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) }
    if (await this.begin(status, headers)) this.end(data)
  }

  /**
   * Between an event stream's headers and its first event: the model thinks (first-event-after-ms,
   * with `: thinking` comments every comment-every-ms), then may fail before answering: a reset,
   * or an in-band error record (`errorRecord` writes it in the endpoint's dialect) and a clean
   * end, as LLM servers do. False: the stream is over.
   */
  async beforeFirstEvent (errorRecord: (type: string) => string): Promise<boolean> {
    const k = this.knobs
    if (k === undefined) return !this.ended
    let waited = 0
    while (waited < k.firstEventAfterMs) {
      const step = Math.min(k.commentEveryMs ?? k.firstEventAfterMs, k.firstEventAfterMs - waited)
      if (!(await this.sleep(step))) return false
      waited += step
      if (waited < k.firstEventAfterMs && !(await this.write(': thinking\n\n'))) return false
    }
    if (k.resetAfterHeaders) {
      this.reset()
      return false
    }
    if (k.errorEvent !== undefined) {
      this.fault = `error-event ${k.errorEvent}`
      this.end(errorRecord(k.errorEvent))
      return false
    }
    return !this.ended
  }

  /** Called with the number of body chunks already written: applies stall-after / reset-after N≥1. */
  async checkpoint (written: number): Promise<boolean> {
    if (this.ended) return false
    if (written === 0) return true // N=0 is handled before the response starts
    if (this.knobs?.resetAfter === written) {
      this.reset()
      return false
    }
    if (this.knobs?.stallAfter === written) {
      this.fault = 'stall'
      await this.hold()
      return false
    }
    return true
  }

  reset (): void {
    this.fault = 'reset'
    this.selfClosed = true
    if (!this.socket.destroyed) this.socket.resetAndDestroy()
  }

  emptyReply (): void {
    this.fault = 'empty-reply'
    this.selfClosed = true
    this.socket.end(() => this.socket.destroy())
  }

  malformed (): void {
    this.fault = 'malformed'
    this.selfClosed = true
    this.bytesOut += MALFORMED.length
    this.socket.end(MALFORMED, () => this.socket.destroy())
  }

  /** Reads the request body to its end, counting it; returns it when keep is true. */
  async readBody (keep: boolean, limit = MAX_JSON_BODY): Promise<Buffer | 'too-large'> {
    const parts: Buffer[] = []
    let tooLarge = false
    for await (const chunk of this.req as AsyncIterable<Buffer>) {
      this.bytesIn += chunk.length
      if (!keep || tooLarge) continue
      if (this.bytesIn > limit) tooLarge = true
      else parts.push(chunk)
    }
    return tooLarge ? 'too-large' : Buffer.concat(parts)
  }

  /** Delay, then the faults that replace the whole response. False: stop here. */
  async prelude (): Promise<boolean> {
    const k = this.knobs
    if (k === undefined) return !this.ended
    if (k.delayMs > 0 && !(await this.sleep(k.delayMs))) return false
    if (this.ended) return false
    if (k.resetAfter === 0) this.reset()
    else if (k.emptyReply) this.emptyReply()
    else if (k.malformed) this.malformed()
    else return true
    return false
  }

  done (): DemoRequestEnd {
    this.ended = true
    for (const t of this.#timers) clearTimeout(t)
    this.#timers.clear()
    const waiters = [...this.#waiters]
    this.#waiters.clear()
    for (const wake of waiters) wake()
    const completed = this.res.writableFinished
    return {
      id: this.id,
      method: this.req.method ?? '',
      path: this.req.url ?? '',
      headers: this.req.headers,
      completed,
      aborted: !completed && !this.selfClosed,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      startedAt: this.startedAt,
      endedAt: performance.now(),
      fault: this.fault,
    }
  }
}
