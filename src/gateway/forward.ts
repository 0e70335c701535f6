// The life of one proxied request (STYLE.md §1.1): the Deadline changes phase here, and the
// Outcome is fixed here, once, where the failure is detected. Each try at an endpoint is an
// Attempt, one undici dispatch handler; an attempt that is no longer current is ignored, so a
// retry never mixes with the try it replaced. Retries happen only before any response byte
// went downstream.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import type { RouteConfig } from '../config/runtime.ts'
import type { UpstreamService, Endpoint } from '../upstream/service.ts'
import type { QueueTicket } from '../upstream/admission.ts'
import { backoffMs, countsAgainstBudget, failureKind, isIdempotent, isStaleConnection, parseRetryAfter, retryAfterFailure, retryOnStatus, type AttemptContext, type RetryReason } from '../upstream/retry.ts'
import { Deadline, resolveLimits } from './deadline.ts'
import { CLIENT_DEADLINE_HEADER, downstreamResponseHeaders, protoOf, requestIdOf, upstreamRequestHeaders } from './headers.ts'
import { errorDocument, outcomeSpec, type Ending } from './outcome.ts'
import { classifyUpstreamError, GatewayAbort } from './classify.ts'
import { errorRecord, isEventStream, isSse } from './sse.ts'
import { Heartbeat } from './heartbeat.ts'
import { writeErrorResponse } from './respond.ts'
import { requestFields } from './access.ts'
import { hostOf } from './router.ts'
import type { Generation } from './generation.ts'
import type { AccessRecord } from '../observe/log.ts'
import type { GatewayMetrics } from '../observe/metrics.ts'

type DispatchController = Dispatcher.DispatchController
type ResponseHeaders = Record<string, string | string[] | undefined>

/** How long an SSE error record may take to reach the client before the reset goes out anyway. */
const ERROR_RECORD_GRACE_MS = 1000

/** What an exchange needs from the running gateway. */
export interface ExchangeHost {
  readonly metrics: GatewayMetrics
  /** Shutting down past drain.delay: refuse new requests, close connections after responses. */
  readonly refusing: boolean
  recordAccess (record: AccessRecord): void
  exchangeEnded (exchange: Exchange): void
  log: { upstreamWarning (upstream: string, endpoint: string, warning: string): void }
}

/** Where the request is going once a route matched. */
interface Target {
  route: RouteConfig
  upstream: UpstreamService
  /** The path sent upstream (stripPrefix applied, query kept). */
  path: string
}

/** One try at one endpoint: forwards undici's callbacks to its exchange while it is current. */
class Attempt implements Dispatcher.DispatchHandler {
  readonly exchange: Exchange
  readonly endpoint: Endpoint
  readonly retry: RetryReason | null
  controller: DispatchController | null = null
  /** Released: its endpoint slot and budget are given back (once). */
  released = false
  /** Replaced by a retry: its callbacks no longer reach the exchange (undici may call them synchronously from abort()). */
  superseded = false

  constructor (exchange: Exchange, endpoint: Endpoint, retry: RetryReason | null) {
    this.exchange = exchange
    this.endpoint = endpoint
    this.retry = retry
  }

  #live (): boolean { return this.exchange.current === this && !this.superseded }

  onRequestStart (controller: DispatchController): void {
    // A try that was replaced, or a request that ended while waiting for a connection, is
    // aborted as soon as it has one.
    const x = this.exchange
    if (!this.#live() || x.ending !== null) controller.abort(new GatewayAbort(x.ending ?? { outcome: 'client_aborted' }))
    else this.controller = controller
  }

  onResponseStart (controller: DispatchController, statusCode: number, headers: ResponseHeaders): void {
    if (this.#live()) this.exchange.responseStarted(this, controller, statusCode, headers)
  }

  onResponseData (controller: DispatchController, chunk: Buffer): void {
    if (this.#live()) this.exchange.responseData(controller, chunk)
  }

  onResponseEnd (): void {
    if (this.#live()) this.exchange.responseEnded(this)
    else this.exchange.release(this)
  }

  onResponseError (_controller: DispatchController | null, err: Error): void {
    if (this.#live()) this.exchange.attemptFailed(this, err)
    else this.exchange.release(this)
  }
}

export class Exchange {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly gen: Generation
  readonly host: ExchangeHost
  readonly startedAt = performance.now()
  readonly requestId: string
  target: Target | null = null
  deadline: Deadline | null = null
  current: Attempt | null = null
  ending: Ending | null = null
  status = 0
  attempts = 0
  bytesIn = 0
  bytesOut = 0
  firstByteMs: number | null = null
  #sse = false
  #responseStarted = false
  #upstreamDone = false
  #heartbeat: Heartbeat | null = null
  /** The request body: null (none), a Buffer kept for retries, or a stream sent once. */
  #body: Buffer | AsyncGenerator<Buffer> | null = null
  #bodyStarted = false
  /** A decided retry holds a share of the upstream's retry budget until its try is released. */
  #budgetHeld = false
  readonly #tried = new Set<Endpoint>()
  #staleRetried = false
  #backoff: NodeJS.Timeout | null = null
  #queued: QueueTicket | null = null
  #admitted = false

  constructor (gen: Generation, host: ExchangeHost, req: IncomingMessage, res: ServerResponse) {
    this.gen = gen
    this.host = host
    this.req = req
    this.res = res
    this.requestId = requestIdOf(req.headers)
  }

  elapsedMs (): number { return Math.round(performance.now() - this.startedAt) }

  /** The endpoint of the current (or last) try. */
  get endpoint (): Endpoint | null { return this.current?.endpoint ?? null }

  /** Route, check, admit and dispatch the request, or answer it with the gateway's own error. */
  start (): void {
    const { req, res, gen } = this
    res.once('close', () => {
      // A response closed before it finished: the client went away (principle 7).
      if (this.ending === null && !res.writableFinished) this.finish({ outcome: 'client_aborted' })
    })
    // fastify's return503OnClosing: a request that reaches a gateway that stopped accepting is
    // refused with Connection: close, so the client retries elsewhere.
    if (this.host.refusing) return this.finish({ outcome: 'draining' })
    const url = req.url ?? ''
    // Only configured upstreams are ever contacted: absolute-form and asterisk targets are refused.
    if (!url.startsWith('/')) return this.finish({ outcome: 'bad_request', detail: 'the request target must be a path (origin-form)' })
    const query = url.indexOf('?')
    const path = query === -1 ? url : url.slice(0, query)
    const route = gen.router.match(req.method ?? 'GET', hostOf(req.headers.host), path)
    if (route === undefined) return this.finish({ outcome: 'no_route' })
    const upstream = gen.upstreams.get(route.upstream)!
    let upstreamPath = url
    if (route.stripPrefix !== null && path.startsWith(route.stripPrefix)) {
      upstreamPath = url.slice(route.stripPrefix.length)
      if (!upstreamPath.startsWith('/')) upstreamPath = `/${upstreamPath}`
    }
    this.target = { route, upstream, path: upstreamPath }
    this.host.metrics.inflight(route.name, 1)

    const limits = resolveLimits(route.timeouts, req.headers[CLIENT_DEADLINE_HEADER] as string | undefined)
    if (typeof limits === 'string') return this.finish({ outcome: 'bad_request', detail: limits })
    const downstream = gen.config.downstream
    const declared = req.headers['content-length']
    if (declared !== undefined && Number(declared) > downstream.maxBodySize) return this.finish(tooLarge(downstream.maxBodySize))
    this.deadline = new Deadline(limits, downstream, (ending) => this.finish(ending))

    const admission = upstream.admission
    if (admission !== null && !admission.tryEnter()) {
      this.#queued = admission.wait(() => {
        this.#queued = null
        this.#admitted = true
        void this.#begin()
      }, () => this.finish({ outcome: 'overloaded', detail: 'queued longer than limits.queueTimeout', limitMs: admission.queueTimeoutMs }))
      if (this.#queued === null) this.finish({ outcome: 'overloaded', detail: `${admission.maxConcurrent} requests in flight and ${admission.maxQueued} queued` })
      return
    }
    this.#admitted = admission !== null
    void this.#begin()
  }

  /** Prepare the body (a small one is kept for retries), then the first try. */
  async #begin (): Promise<void> {
    const { req } = this
    const declared = req.headers['content-length']
    const hasBody = (declared !== undefined && declared !== '0') || req.headers['transfer-encoding'] !== undefined
    if (hasBody) {
      const policy = this.target!.route.retry
      const retriable = policy.attempts > 1 || isIdempotent(req.method ?? 'GET')
      if (retriable && declared !== undefined && Number(declared) <= policy.maxBufferedBody) {
        const body = await this.#readBody()
        if (body === null) return // the request ended while its body arrived
        this.#body = body
      } else {
        this.#body = this.#requestBody()
      }
    }
    this.#dispatch(null)
  }

  /** One try at an endpoint (a different one from earlier tries when there is one). */
  #dispatch (retry: RetryReason | null): void {
    if (this.ending !== null) return
    const { upstream, path } = this.target!
    const endpoint = upstream.pick(this.#tried)
    if (endpoint === undefined) return this.finish({ outcome: 'upstream_unavailable', detail: 'the upstream has no endpoint' })
    this.#tried.add(endpoint)
    const attempt = new Attempt(this, endpoint, retry)
    this.current = attempt
    this.attempts++
    endpoint.inflight++
    const fresh = retry === 'stale_connection' ? endpoint.freshClient() : null
    const body = this.#body
    ;(fresh ?? endpoint.pool).dispatch({
      path,
      method: this.req.method ?? 'GET',
      headers: upstreamRequestHeaders(this.req, {
        requestId: this.requestId,
        clientIp: this.req.socket.remoteAddress ?? '',
        proto: protoOf(this.req),
        remainingMs: this.deadline!.remainingMs()
      }),
      // undici takes any async iterable as a body (its types list only streams and buffers).
      body: body as Dispatcher.DispatchOptions['body']
    }, attempt)
    // The one-off client closes once its request is done.
    if (fresh !== null) void fresh.close()
  }

  /** Gives back what a try holds: its endpoint's in-flight count and its retry budget share. */
  release (attempt: Attempt): void {
    if (attempt.released) return
    attempt.released = true
    attempt.endpoint.inflight--
    if (attempt.retry !== null) this.#releaseBudget()
  }

  #attemptContext (): AttemptContext {
    const { upstream, route } = this.target!
    return {
      method: this.req.method ?? 'GET',
      replayable: this.#body === null || Buffer.isBuffer(this.#body) || !this.#bodyStarted,
      attempts: this.attempts,
      staleRetried: this.#staleRetried,
      budgetAllows: upstream.retryBudgetAllows(route.retry.budget)
    }
  }

  #releaseBudget (): void {
    if (!this.#budgetHeld) return
    this.#budgetHeld = false
    this.target!.upstream.retriesInFlight--
  }

  /**
   * Waits (backoff) and tries again; the deadline keeps running, a client that leaves ends it.
   * The retry holds its budget share from now, so failures that arrive together cannot all pass
   * the budget check before any of their retries is sent.
   */
  #retry (reason: RetryReason, delayMs: number): void {
    if (reason === 'stale_connection') this.#staleRetried = true
    if (countsAgainstBudget(reason)) {
      this.#budgetHeld = true
      this.target!.upstream.retriesInFlight++
    }
    this.host.metrics.retries.inc({ route: this.target!.route.name, reason })
    if (delayMs <= 0) return this.#dispatch(reason)
    this.#backoff = setTimeout(() => {
      this.#backoff = null
      this.#dispatch(reason)
    }, delayMs)
  }

  attemptFailed (attempt: Attempt, err: Error): void {
    if (this.ending !== null) return
    this.release(attempt)
    const { upstream, route } = this.target!
    const kind = failureKind(err)
    if (!this.#responseStarted) {
      if (kind !== 'other') upstream.failed(attempt.endpoint, (err as { code?: string }).code ?? err.message)
      if (kind === 'reset' && isStaleConnection(err)) {
        const idleMs = attempt.endpoint.lowerIdleAfterStale()
        if (idleMs !== null) this.host.log.upstreamWarning(upstream.name, attempt.endpoint.url, `a pooled connection failed as it was reused: the endpoint closes idle connections sooner than longhaul kept them; its pooled idle time is now ${idleMs}ms`)
      }
      const reason = retryAfterFailure(route.retry, err, this.#attemptContext())
      if (reason !== null) {
        // An unstarted streaming body was never read: it can go with the next try.
        const delay = reason === 'stale_connection' ? 0 : backoffMs(route.retry, this.attempts, null)
        return this.#retry(reason, delay)
      }
    }
    this.#upstreamDone = true
    this.finish(classifyUpstreamError(err, this.#responseStarted))
  }

  responseStarted (attempt: Attempt, controller: DispatchController, statusCode: number, headers: ResponseHeaders): void {
    if (this.ending !== null) return
    const { route, upstream } = this.target!
    if (statusCode >= 500) upstream.failed(attempt.endpoint, `status ${statusCode}`)
    else upstream.succeeded(attempt.endpoint)
    const reason = retryOnStatus(route.retry, statusCode, this.#attemptContext())
    if (reason !== null) {
      // Nothing went downstream yet: drop this answer and try again.
      attempt.superseded = true
      this.release(attempt)
      controller.abort(new GatewayAbort({ outcome: 'upstream_reset', detail: `retrying after status ${statusCode}` }))
      return this.#retry(reason, backoffMs(route.retry, this.attempts, parseRetryAfter(headers['retry-after'])))
    }
    this.#responseStarted = true
    this.deadline!.responseStarted()
    this.firstByteMs = this.elapsedMs()
    this.host.metrics.firstByte(route.name, this.firstByteMs)
    this.status = statusCode
    this.#sse = route.sse.errorEvent && isSse(headers)
    const keepAlive = headers['keep-alive']
    if (typeof keepAlive === 'string') {
      const warning = attempt.endpoint.checkKeepAliveHint(keepAlive)
      if (warning !== null) this.host.log.upstreamWarning(upstream.name, attempt.endpoint.url, warning)
    }
    const out = downstreamResponseHeaders(headers, this.requestId)
    if (this.host.refusing) out.connection = 'close'
    this.res.writeHead(statusCode, out)
    // A stream's headers go out at once; a body with a known length follows them in one write.
    if (headers['content-length'] === undefined || isEventStream(headers['content-type'])) this.res.flushHeaders()
    const { heartbeatMs } = route.sse
    if (heartbeatMs !== null && isSse(headers)) this.#heartbeat = new Heartbeat(heartbeatMs, this.res, () => this.host.metrics.heartbeat(route.name))
  }

  responseData (controller: DispatchController, chunk: Buffer): void {
    if (this.ending !== null) return
    this.deadline!.touch()
    this.#heartbeat?.forwarded(chunk)
    this.bytesOut += chunk.length
    if (!this.res.write(chunk)) {
      controller.pause()
      this.deadline!.sendBlocked()
      this.res.once('drain', () => {
        if (this.ending !== null) return
        this.deadline!.sendDrained()
        controller.resume()
      })
    }
  }

  responseEnded (attempt: Attempt): void {
    if (this.ending !== null) return
    this.release(attempt)
    this.#upstreamDone = true
    // The exchange ends when the last byte is handed to the client, so sendTimeout still guards it.
    this.res.end(() => this.finish({ outcome: 'ok' }))
  }

  /**
   * A small request body read whole before the first try, so a retry can send it again; the
   * same limits apply as to a streamed one. Null when the request ended meanwhile.
   */
  async #readBody (): Promise<Buffer | null> {
    const parts: Buffer[] = []
    try {
      for await (const chunk of this.#requestBody()) parts.push(chunk)
    } catch {
      return null
    }
    return this.ending === null ? Buffer.concat(parts) : null
  }

  /**
   * The request body, streamed with backpressure: undici pulls the next chunk when it can write
   * it, and only while the gateway waits on the client does bodyIdleTimeout run.
   */
  async * #requestBody (): AsyncGenerator<Buffer> {
    // destroyOnReturn false: an aborted upload must not destroy the socket the error response uses.
    // Runs on undici's first pull: until then the body was never sent and can go with a retry.
    this.#bodyStarted = true
    const chunks = this.req.iterator({ destroyOnReturn: false })
    const max = this.gen.config.downstream.maxBodySize
    const deadline = this.deadline!
    try {
      for (;;) {
        deadline.awaitingBody()
        let next: IteratorResult<Buffer>
        try {
          next = await chunks.next()
        } catch (err) {
          this.finish({ outcome: 'client_aborted' })
          throw err
        }
        deadline.bodyArrived()
        if (next.done === true || this.ending !== null) return
        this.bytesIn += next.value.length
        if (this.bytesIn > max) {
          this.finish(tooLarge(max))
          throw new Error('request body over downstream.maxBodySize')
        }
        yield next.value
      }
    } finally {
      deadline.bodyArrived()
    }
  }

  /** Ends the request once, with its outcome: abort upstream, answer or cut, log. */
  finish (ending: Ending): void {
    if (this.ending !== null) return
    this.ending = ending
    this.deadline?.stop()
    this.#heartbeat?.stop()
    if (this.#backoff !== null) clearTimeout(this.#backoff)
    this.#releaseBudget()
    this.#queued?.cancel()
    if (this.#admitted) this.target!.upstream.admission!.leave()
    const attempt = this.current
    if (attempt !== null) {
      if (!this.#upstreamDone) attempt.controller?.abort(new GatewayAbort(ending))
      this.release(attempt)
    }
    const { res } = this
    const outcome = ending.outcome
    if (outcome === 'ok' || outcome === 'client_aborted') {
      // nothing more to send
    } else if (outcome === 'client_send_timeout') {
      res.destroy()
    } else if (!res.headersSent) {
      this.status = outcomeSpec(outcome).status
      writeErrorResponse(res, ending, this.#errorDocument(ending))
    } else {
      this.#truncate(ending)
    }
    if (!res.headersSent || this.status === 0) this.status = outcomeSpec(outcome).status
    this.host.recordAccess({
      requestId: this.requestId,
      ...requestFields(this.req),
      route: this.target?.route.name ?? null,
      upstream: this.target?.upstream.name ?? null,
      endpoint: this.endpoint?.url ?? null,
      status: this.status,
      outcome,
      attempts: this.attempts,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      durationMs: this.elapsedMs(),
      firstByteMs: this.firstByteMs,
      ...(ending.limitMs === undefined ? {} : { limitMs: ending.limitMs })
    })
    if (this.target !== null) this.host.metrics.inflight(this.target.route.name, -1)
    this.host.exchangeEnded(this)
  }

  #errorDocument (ending: Ending): Record<string, unknown> {
    return errorDocument(ending, {
      route: this.target?.route.name ?? null,
      upstream: this.target?.upstream.name ?? null,
      requestId: this.requestId,
      elapsedMs: this.elapsedMs()
    })
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
    res.write(errorRecord(this.#errorDocument(ending)), () => {
      clearTimeout(grace)
      res.destroy()
    })
  }
}

function tooLarge (max: number): Ending {
  return { outcome: 'payload_too_large', detail: `the limit is ${max} bytes` }
}
