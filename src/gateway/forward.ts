// The life of one proxied request, as one undici dispatch handler (STYLE.md §1.1): the Deadline
// changes phase here, and the Outcome is fixed here, once, where the failure is detected.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import type { RouteConfig } from '../config/runtime.ts'
import type { UpstreamService, Endpoint } from '../upstream/service.ts'
import { Deadline, resolveLimits } from './deadline.ts'
import { CLIENT_DEADLINE_HEADER, downstreamResponseHeaders, requestIdOf, upstreamRequestHeaders } from './headers.ts'
import { errorDocument, outcomeSpec, type Ending } from './outcome.ts'
import { classifyUpstreamError, GatewayAbort } from './classify.ts'
import { errorRecord, isEventStream, isSse } from './sse.ts'
import { writeErrorResponse } from './respond.ts'
import { hostOf } from './router.ts'
import type { Generation } from './generation.ts'
import type { AccessRecord } from '../observe/log.ts'
import type { GatewayMetrics } from '../observe/metrics.ts'

type DispatchController = Dispatcher.DispatchController

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
}

export class Exchange implements Dispatcher.DispatchHandler {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly gen: Generation
  readonly host: ExchangeHost
  readonly startedAt = performance.now()
  readonly requestId: string
  target: Target | null = null
  endpoint: Endpoint | null = null
  deadline: Deadline | null = null
  controller: DispatchController | null = null
  ending: Ending | null = null
  status = 0
  attempts = 0
  bytesIn = 0
  bytesOut = 0
  firstByteMs: number | null = null
  #sse = false
  #upstreamDone = false

  constructor (gen: Generation, host: ExchangeHost, req: IncomingMessage, res: ServerResponse) {
    this.gen = gen
    this.host = host
    this.req = req
    this.res = res
    this.requestId = requestIdOf(req.headers)
  }

  elapsedMs (): number { return Math.round(performance.now() - this.startedAt) }

  /** Route, check and dispatch the request, or answer it with the gateway's own error. */
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
    this.target = { route, upstream }
    this.host.metrics.inflight(route.name, 1)

    const limits = resolveLimits(route.timeouts, req.headers[CLIENT_DEADLINE_HEADER] as string | undefined)
    if (typeof limits === 'string') return this.finish({ outcome: 'bad_request', detail: limits })
    const downstream = gen.config.downstream
    const declared = req.headers['content-length']
    if (declared !== undefined && Number(declared) > downstream.maxBodySize) return this.finish(tooLarge(downstream.maxBodySize))
    this.deadline = new Deadline(limits, downstream, (ending) => this.finish(ending))

    const endpoint = upstream.pick()
    if (endpoint === undefined) return this.finish({ outcome: 'upstream_unavailable', detail: 'the upstream has no endpoint' })
    this.endpoint = endpoint
    endpoint.inflight++
    this.attempts++
    const hasBody = (declared !== undefined && declared !== '0') || req.headers['transfer-encoding'] !== undefined
    const strip = route.stripPrefix
    let upstreamPath = url
    if (strip !== null && path.startsWith(strip)) {
      upstreamPath = url.slice(strip.length)
      if (!upstreamPath.startsWith('/')) upstreamPath = `/${upstreamPath}`
    }
    endpoint.pool.dispatch({
      path: upstreamPath,
      method: req.method ?? 'GET',
      headers: upstreamRequestHeaders(req, {
        requestId: this.requestId,
        clientIp: req.socket.remoteAddress ?? '',
        proto: 'http',
        remainingMs: this.deadline.remainingMs()
      }),
      // undici takes any async iterable as a body (its types list only streams and buffers).
      body: hasBody ? this.#requestBody() as unknown as Dispatcher.DispatchOptions['body'] : null
    }, this)
  }

  /**
   * The request body, streamed with backpressure: undici pulls the next chunk when it can write
   * it, and only while the gateway waits on the client does bodyIdleTimeout run.
   */
  async * #requestBody (): AsyncGenerator<Buffer> {
    // destroyOnReturn false: an aborted upload must not destroy the socket the error response uses.
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

  onRequestStart (controller: DispatchController): void {
    // A request that ended while it waited for a connection is aborted as soon as it has one.
    if (this.ending !== null) controller.abort(new GatewayAbort(this.ending))
    else this.controller = controller
  }

  onResponseStart (controller: DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (this.ending !== null) return
    this.deadline!.responseStarted()
    this.firstByteMs = this.elapsedMs()
    this.host.metrics.firstByte(this.target!.route.name, this.firstByteMs)
    this.status = statusCode
    this.#sse = this.target!.route.sse.errorEvent && isSse(headers)
    const keepAlive = headers['keep-alive']
    if (typeof keepAlive === 'string') {
      const warning = this.endpoint!.checkKeepAliveHint(keepAlive)
      if (warning !== null) this.host.log.upstreamWarning(this.target!.upstream.name, this.endpoint!.url, warning)
    }
    const out = downstreamResponseHeaders(headers, this.requestId)
    if (this.host.refusing) out.connection = 'close'
    this.res.writeHead(statusCode, out)
    // A stream's headers go out at once; a body with a known length follows them in one write.
    if (headers['content-length'] === undefined || isEventStream(headers['content-type'])) this.res.flushHeaders()
    void controller
  }

  onResponseData (controller: DispatchController, chunk: Buffer): void {
    if (this.ending !== null) return
    this.deadline!.touch()
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

  onResponseEnd (): void {
    if (this.ending !== null) return
    this.#upstreamDone = true
    // The exchange ends when the last byte is handed to the client, so sendTimeout still guards it.
    this.res.end(() => this.finish({ outcome: 'ok' }))
  }

  onResponseError (_controller: DispatchController | null, err: Error): void {
    if (this.ending !== null) return
    this.#upstreamDone = true
    this.finish(classifyUpstreamError(err, this.status !== 0))
  }

  /** Ends the request once, with its outcome: abort upstream, answer or cut, log. */
  finish (ending: Ending): void {
    if (this.ending !== null) return
    this.ending = ending
    this.deadline?.stop()
    if (this.endpoint !== null) this.endpoint.inflight--
    if (!this.#upstreamDone && this.controller !== null) this.controller.abort(new GatewayAbort(ending))
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
      method: this.req.method ?? '',
      host: this.req.headers.host ?? null,
      path: this.req.url ?? '',
      route: this.target?.route.name ?? null,
      upstream: this.target?.upstream.name ?? null,
      endpoint: this.endpoint?.url ?? null,
      protocol: `HTTP/${this.req.httpVersion}`,
      clientIp: this.req.socket.remoteAddress ?? '',
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
