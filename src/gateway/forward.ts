// The life of one proxied request (STYLE.md §1.1): route, limits, admit (passage.ts), send
// (attempts.ts owns the tries), stream the winning try's response back, end once. The Deadline
// changes phase here, and the Outcome is fixed here, once, where the failure is detected.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { Dispatcher } from 'undici'
import type { Endpoint } from '../upstream/endpoint.ts'
import { Attempts, type ResponseHeaders, type WinningTry } from './attempts.ts'
import { downstreamResponseHeaders, protoOf, upstreamRequestHeaders } from './headers.ts'
import type { Ending } from './outcome.ts'
import type { Failure } from './classify.ts'
import { errorRecord, isEventStream, isSse } from './sse.ts'
import { Heartbeat } from './heartbeat.ts'
import { StreamWatch } from './stream-watch.ts'
import type { StreamEvent } from './sse-events.ts'
import { HeldResponse } from './held-response.ts'
import type { HeldFailure } from '../upstream/retry.ts'
import { writeErrorResponse } from './respond.ts'
import { isHttp1, Passage, type PassageHost } from './passage.ts'
import { lingerAfter } from './linger.ts'
import { RequestBody } from './request-body.ts'
import type { Generation } from './generation.ts'

type DispatchController = Dispatcher.DispatchController

/** How long an SSE error record may take to reach the client before the reset goes out anyway. */
const ERROR_RECORD_GRACE_MS = 1000

export class Exchange extends Passage implements WinningTry {
  readonly res: ServerResponse
  #tries: Attempts | null = null
  #body: RequestBody | null = null
  #sse = false
  #heartbeat: Heartbeat | null = null
  /** Node's parser failed on this request: its connection cannot carry anything after the answer. */
  #parserFailed = false
  /** Watches the body for its first answer event (firstEvent) and, on metered routes, gaps and usage. */
  #watch: StreamWatch | null = null
  /** The response headers held by the first-event gate (sse.holdHeaders), until its first event. */
  #held: HeldResponse | null = null

  constructor (gen: Generation, host: PassageHost, req: IncomingMessage, res: ServerResponse) {
    super(gen, host, req)
    this.res = res
  }

  get attempts (): number { return this.#tries?.count ?? 0 }
  get endpoint (): Endpoint | null { return this.#tries?.endpoint ?? null }

  whenClosed (): Promise<void> {
    return this.res.closed ? Promise.resolve() : once(this.res, 'close').then(() => {})
  }

  destroyClientSide (): void { this.res.destroy() }

  /** Route, check, admit and send the request, or answer it with the gateway's own error. */
  start (): void {
    const { res } = this
    res.once('close', () => {
      // A response closed before it finished: the client went away (principle 7).
      if (this.ending === null && !res.writableFinished) this.finish({ outcome: 'client_aborted' })
    })
    this.open({ tunnel: false }, () => this.#prepareBody())
  }

  /** The body is prepared (a small one is kept for retries), then the first try goes. */
  #prepareBody (): void {
    const body = this.#body = new RequestBody(this, this.gen.config.downstream.maxBodySize)
    const ready = body.prepare(this.target!.route.retry)
    if (ready === true) return this.#send(body)
    // prepared false: the request ended while its body arrived. A throw in #send is failed(), as in open().
    ready.then((prepared) => { if (prepared) this.#send(body) }).catch((err: unknown) => this.failed(err))
  }

  /** The tries of the request, with its prepared body. */
  #send (body: RequestBody): void {
    const { req } = this
    const { route, upstream, path } = this.target!
    const deadline = this.deadline!
    this.#tries = new Attempts(upstream, route, path, {
      method: req.method ?? 'GET',
      headers: () => upstreamRequestHeaders(req, {
        requestId: this.requestId,
        clientIp: this.clientIp,
        proto: protoOf(req),
        remainingMs: deadline.remainingMs()
      }),
      body: body.value,
      replayable: () => body.replayable()
    }, this, {
      retried: (reason) => {
        this.host.metrics.retries.inc({ route: route.name, reason })
        this.#dropHeld()
      },
      upstreamWarning: (endpoint, warning) => this.host.log.upstreamWarning(upstream.name, endpoint, warning),
      trace: this.trace,
      guarded: (step) => this.guarded(step)
    })
    if (this.ending === null) this.#tries.start()
  }

  onResponseStart (controller: DispatchController, statusCode: number, headers: ResponseHeaders): void {
    if (this.ending !== null) return
    const { route } = this.target!
    this.deadline!.responseStarted()
    this.firstByte(statusCode)
    const holdMs = route.sse.holdHeadersMs
    const hold = holdMs !== null && statusCode < 300 && isSse(headers)
    this.#watch = this.#watchFor(headers, hold)
    if (hold) {
      this.#tries!.holdResponse()
      this.#held = new HeldResponse(statusCode, headers, controller, holdMs, () => this.#release())
    } else {
      this.#sendHead(statusCode, headers)
    }
  }

  /** The response headers go downstream (at once, or when the first-event gate lets them). */
  #sendHead (statusCode: number, headers: ResponseHeaders): void {
    const { route } = this.target!
    this.#sse = route.sse.errorEvent && isSse(headers)
    const out = downstreamResponseHeaders(headers, this.requestId)
    if (this.host.refusing) out.connection = 'close'
    this.res.writeHead(statusCode, out)
    // A stream's headers go out at once; a body with a known length follows them in one write.
    if (headers['content-length'] === undefined || isEventStream(headers['content-type'])) this.res.flushHeaders()
    const { heartbeatMs } = route.sse
    if (heartbeatMs !== null && isSse(headers)) this.#heartbeat = new Heartbeat(heartbeatMs, this.res, () => this.host.metrics.heartbeat(route.name))
  }

  /** Only a response whose first event or events matter gets a watch: the others are not read. */
  #watchFor (headers: ResponseHeaders, held: boolean): StreamWatch | null {
    const { route } = this.target!
    const sse = isSse(headers)
    const metered = route.sse.metrics && sse
    if (!metered && !held && !this.deadline!.limits.awaitsFirstEvent) return null
    return new StreamWatch({
      sse,
      route: route.name,
      metrics: metered ? this.host.metrics : null,
      arrivedAt: this.startedAt,
      errors: held,
      onFirstEvent: (event) => this.#firstEvent(event)
    })
  }

  /** The first answer event: streamIdle governs from now on, and held headers go out, unless it is an error record. */
  #firstEvent (event: StreamEvent): void {
    if (this.#held !== null && event.error) return this.#failHeld('error_event', { outcome: 'upstream_error_event', detail: event.detail })
    this.deadline!.firstEventArrived()
    this.#release()
  }

  /** The held headers and bytes go downstream: the first event came, the hold ran out, or too much arrived. */
  #release (): void {
    const held = this.#held
    if (held === null || this.ending !== null) return
    this.#held = null
    held.stop()
    this.#tries!.releaseResponse()
    this.#sendHead(held.statusCode, held.headers)
    for (const chunk of held.chunks) {
      this.#heartbeat?.forwarded(chunk)
      this.relay(this.res, held.controller, chunk)
    }
  }

  /** A held response failed before its first event: retried, or answered with `ending`'s status. */
  #failHeld (failure: HeldFailure, ending: Ending): void {
    this.#dropHeld()
    this.#tries!.heldFailed(failure, ending)
  }

  /** Forgets a held response (its try failed): its clocks go back to waiting for headers. */
  #dropHeld (): void {
    const held = this.#held
    if (held === null) return
    this.#held = null
    held.stop()
    this.#watch = null
    this.deadline!.retryingResponse()
  }

  protected override limitFired (ending: Ending): void {
    if (this.#held !== null && ending.outcome === 'first_event_timeout') return this.#failHeld('first_event_timeout', ending)
    this.finish(ending)
  }

  onResponseData (controller: DispatchController, chunk: Buffer): void {
    if (this.ending !== null) return
    const held = this.#held
    if (held !== null) {
      const within = held.add(chunk)
      this.#watch?.chunk(chunk)
      if (!within) this.#release()
      return
    }
    this.#watch?.chunk(chunk)
    this.#heartbeat?.forwarded(chunk)
    this.relay(this.res, controller, chunk)
  }

  onResponseEnd (): void {
    if (this.ending !== null) return
    this.#release()
    // Nothing may be written after end(): the heartbeat and the watch stop before it, not in
    // finish(), which waits for a slow client to take the last bytes.
    this.#heartbeat?.stop()
    this.#watch?.end()
    this.res.end(() => this.finish({ outcome: 'ok' }))
    // The upstream is done: a client that does not take the rest is cut by sendTimeout.
    this.deadline!.responseEnded(this.res.writableLength > 0)
  }

  onResponseError (failure: Failure): void {
    this.finish(failure.ending)
  }

  /** Node's parser failed on this request's connection (a bad chunk, an EOF mid-body). */
  requestError (ending: Ending): void {
    this.#parserFailed = true
    this.finish(ending)
  }

  protected stopUpstream (ending: Ending): void {
    this.#held?.stop()
    this.#heartbeat?.stop()
    this.#watch?.end()
    this.#tries?.end(ending)
  }

  protected respond (ending: Ending): void {
    const { res } = this
    const outcome = ending.outcome
    // The access line has the status sent: none yet when the first-event gate held the headers.
    if (!res.headersSent) this.status = 0
    if (outcome === 'ok' || outcome === 'client_aborted') {
      // nothing more to send
    } else if (outcome === 'client_send_timeout') {
      res.destroy()
    } else if (!res.headersSent) {
      this.#closeAfterAnswer(ending)
      this.status = writeErrorResponse(res, ending, this.errorDocument(ending))
    } else {
      this.#truncate(ending)
    }
  }

  /**
   * An HTTP/1.1 answer sent before the request body was read closes its connection: the rest of
   * the body is read for a bounded time (linger.ts), unless the parser failed or the client is
   * already silent past bodyIdleTimeout.
   */
  #closeAfterAnswer (ending: Ending): void {
    const { req, res } = this
    if (!isHttp1(req) || req.complete) return
    if (this.#parserFailed || ending.outcome === 'request_body_timeout') {
      res.shouldKeepAlive = false
      return
    }
    const { lingerTimeoutMs, bodyIdleTimeoutMs } = this.gen.config.downstream
    lingerAfter(res, { totalMs: lingerTimeoutMs, idleMs: bodyIdleTimeoutMs })
  }

  /**
   * Headers already went out: the response is cut, never ended cleanly (principle 6). An event
   * stream first gets a record naming the outcome; HTTP/1.1 then loses its final chunk.
   */
  #truncate (ending: Ending): void {
    const { res } = this
    if (!this.#sse || res.writableNeedDrain || res.destroyed) {
      res.destroy()
      return
    }
    const grace = setTimeout(() => res.destroy(), ERROR_RECORD_GRACE_MS)
    res.write(errorRecord(this.errorDocument(ending)), () => {
      clearTimeout(grace)
      res.destroy()
    })
  }
}
