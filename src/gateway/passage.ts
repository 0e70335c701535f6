// What every request through the gateway shares, a proxied exchange (forward.ts) or a WebSocket
// tunnel (tunnel.ts): its opening (refuse while shutting down, route, limits, the client's
// deadline, admission) and its closing (stop the clock, give back the admission slot, one access
// line). A tunnel holds its admission slot for its whole life, like a request does.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import type { RouteConfig } from '../config/runtime.ts'
import type { UpstreamService } from '../upstream/service.ts'
import type { Endpoint } from '../upstream/endpoint.ts'
import type { Admission, QueueTicket } from '../upstream/admission.ts'
import type { AccessRecord } from '../observe/log.ts'
import type { GatewayMetrics } from '../observe/metrics.ts'
import type { RequestMeasures } from '../observe/headroom.ts'
import type { RequestTrace, Tracing } from '../observe/tracing.ts'
import { Deadline, resolveLimits } from './deadline.ts'
import { CLIENT_DEADLINE_HEADER, clientRetryCountOf, requestIdOf, SDK_TIMEOUT_HEADER } from './headers.ts'
import { errorDocument, outcomeSpec, type Ending, type ErrorDocument } from './outcome.ts'
import { hostOf } from './router.ts'
import { checkRequestHead } from './request-head.ts'
import type { Generation } from './generation.ts'

/** What a request needs from the running gateway. */
export interface PassageHost {
  readonly metrics: GatewayMetrics
  /** Shutting down past drain.delay: refuse new requests, close connections after responses. */
  readonly refusing: boolean
  recordAccess (record: AccessRecord): void
  /** What a finished request's clocks measured, for the timeout headroom. */
  measured (route: string, measures: RequestMeasures): void
  /** OpenTelemetry, when configured. */
  readonly tracing: Tracing | null
  ended (passage: Passage): void
  readonly log: {
    upstreamWarning (upstream: string, endpoint: string, warning: string): void
    internalError (requestId: string, err: unknown): void
  }
}

/** Where the request is going once a route matched. */
export interface Target {
  readonly route: RouteConfig
  readonly upstream: UpstreamService
  /** The path sent upstream (stripPrefix applied, query kept). */
  readonly path: string
}

export abstract class Passage {
  readonly req: IncomingMessage
  readonly gen: Generation
  readonly host: PassageHost
  readonly startedAt = performance.now()
  readonly requestId: string
  /** Read at arrival: an HTTP/2 stream's socket proxy no longer knows it once the stream is gone. */
  readonly clientIp: string
  target: Target | null = null
  deadline: Deadline | null = null
  ending: Ending | null = null
  status = 0
  /** Client to upstream (request body, or a tunnel's bytes). */
  bytesIn = 0
  /** Upstream to client (response body, or a tunnel's bytes). */
  bytesOut = 0
  firstByteMs: number | null = null
  /** This request's span, when telemetry is configured. */
  trace: RequestTrace | null = null
  /** The client's own attempt number (X-Stainless-Retry-Count), when it sent one. */
  readonly clientRetryCount: number | null
  #queued: QueueTicket | null = null
  /** The admission that gave this request its slot, until it leaves. */
  #admittedBy: Admission | null = null

  constructor (gen: Generation, host: PassageHost, req: IncomingMessage) {
    this.gen = gen
    this.host = host
    this.req = req
    this.requestId = requestIdOf(req.headers)
    this.clientIp = req.socket.remoteAddress ?? ''
    this.clientRetryCount = clientRetryCountOf(req.headers)
  }

  elapsedMs (): number { return Math.round(performance.now() - this.startedAt) }

  /** Tries made upstream, for the access line. */
  abstract get attempts (): number
  /** The endpoint of the current (or last) try. */
  abstract get endpoint (): Endpoint | null
  /** Resolves once the client's side is closed (the drain waits for the last bytes to go out). */
  abstract whenClosed (): Promise<void>
  /** Ends the client's side now, whatever is still unsent (a client that stopped reading). */
  abstract destroyClientSide (): void
  /** Stops the upstream side: aborts a try in progress, or closes a tunnel's connection. */
  protected abstract stopUpstream (ending: Ending): void
  /** Answers with the gateway's error, cuts what was started, or sends nothing more. */
  protected abstract respond (ending: Ending): void

  /**
   * The opening every request shares; `send` runs once the request holds its admission slot.
   * A refusal ends the request at once with its outcome.
   */
  protected open (options: { tunnel: boolean }, send: () => void): void {
    const { req, gen } = this
    this.trace = this.host.tracing?.request(req.method ?? 'GET', req.headers, this.requestId) ?? null
    // fastify's return503OnClosing: a request that reaches a gateway that stopped accepting is
    // refused with Connection: close, so the client retries elsewhere.
    if (this.host.refusing) return this.finish({ outcome: 'draining' })
    // Checks no route can make acceptable; routing then sees the normalised path, so that a route
    // prefix is an access boundary (`/public/../admin` is routed, and forwarded, as `/admin`).
    const head = checkRequestHead(req, isHttp1(req), gen.config.downstream.maxHeaderCount)
    if ('ending' in head) return this.finish(head.ending)
    const { path, target } = head
    const route = gen.router.match(req.method ?? 'GET', hostOf(req.headers.host), path)
    if (route === undefined) return this.finish({ outcome: 'no_route' })
    let upstreamPath = target
    if (route.stripPrefix !== null && path.startsWith(route.stripPrefix)) {
      upstreamPath = target.slice(route.stripPrefix.length)
      if (!upstreamPath.startsWith('/')) upstreamPath = `/${upstreamPath}`
    }
    const upstream = gen.upstreams.get(route.upstream)!
    this.target = { route, upstream, path: upstreamPath }
    this.host.metrics.inflight(route.name, 1)
    if (this.clientRetryCount !== null && this.clientRetryCount > 0) this.host.metrics.clientRetry(route.name)

    const limits = resolveLimits(route.timeouts, req.headers[CLIENT_DEADLINE_HEADER] as string | undefined, req.headers[SDK_TIMEOUT_HEADER] as string | undefined)
    if (typeof limits === 'string') return this.finish({ outcome: 'bad_request', detail: limits })
    const downstream = gen.config.downstream
    const declared = req.headers['content-length']
    if (declared !== undefined && Number(declared) > downstream.maxBodySize) return this.finish(tooLarge(downstream.maxBodySize))
    // A budget already spent (x-longhaul-timeout-ms: 0) sends nothing upstream: the timer would fire a turn too late.
    if (limits.totalMs === 0) return this.finish({ outcome: limits.totalOutcome, limitMs: 0 })
    const tunnelIdleMs = options.tunnel ? route.timeouts.tunnelIdle.ms : null
    this.deadline = new Deadline({ ...limits, tunnelIdleMs }, downstream, (ending) => this.limitFired(ending))
    if (this.trace !== null) for (const p of this.deadline.progress()) this.trace.limitArmed(p.limit, p.outcome, p.limitMs)

    const admission = upstream.admission
    if (admission === null) return this.guarded(send)
    if (admission.tryEnter()) {
      this.#admittedBy = admission
      return this.guarded(send)
    }
    this.#queued = admission.wait(() => {
      this.#queued = null
      this.#admittedBy = admission
      this.guarded(send)
    }, () => this.finish({ outcome: 'overloaded', detail: 'queued longer than limits.queueTimeout', limitMs: admission.queueTimeoutMs }))
    if (this.#queued === null) this.finish({ outcome: 'overloaded', detail: `${admission.maxConcurrent} requests in flight and ${admission.maxQueued} queued` })
  }

  /** Ends the request once, with its outcome: stop upstream, answer or cut, log. */
  finish (ending: Ending): void {
    if (this.ending !== null) return
    this.ending = ending
    this.deadline?.stop()
    this.#queued?.cancel()
    this.#admittedBy?.leave()
    this.#admittedBy = null
    this.stopUpstream(ending)
    this.respond(ending)
    if (this.status === 0) this.status = outcomeSpec(ending.outcome).status
    const { req } = this
    const durationMs = this.elapsedMs()
    // One object of one shape, its fields in the access line's order: no spread per request.
    const record: AccessRecord = {
      requestId: this.requestId,
      method: req.method ?? '',
      host: req.headers.host ?? null,
      path: req.url ?? '',
      protocol: protocolOf(req),
      clientIp: this.clientIp,
      route: this.target?.route.name ?? null,
      upstream: this.target?.upstream.name ?? null,
      endpoint: this.endpoint?.url ?? null,
      status: this.status,
      outcome: ending.outcome,
      attempts: this.attempts,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      durationMs,
      firstByteMs: this.firstByteMs
    }
    if (ending.limitMs !== undefined) record.limitMs = ending.limitMs
    if (this.clientRetryCount !== null) record.clientRetryCount = this.clientRetryCount
    const extra = this.accessExtra()
    if (extra !== NO_EXTRA) Object.assign(record, extra)
    this.host.recordAccess(record)
    const { deadline, target } = this
    if (target !== null && deadline !== null) {
      this.host.measured(target.route.name, {
        firstByte: this.firstByteMs,
        streamSilence: deadline.longestSilenceMs,
        total: ending.outcome === 'ok' ? durationMs : null,
        uploadSilence: deadline.longestUploadSilenceMs
      })
    }
    this.trace?.end({ outcome: ending.outcome, status: this.status, route: target?.route.name ?? null, upstream: target?.upstream.name ?? null, bytesIn: this.bytesIn, bytesOut: this.bytesOut, limitMs: ending.limitMs ?? null })
    if (target !== null) this.host.metrics.inflight(target.route.name, -1)
    this.host.ended(this)
  }

  /**
   * The gateway's own code threw on this request's path: the request ends as internal_error and
   * the error is logged, instead of an uncaught exception (or rejection) ending the process.
   */
  protected failed (err: unknown): void {
    this.host.log.internalError(this.requestId, err)
    this.finish({ outcome: 'internal_error' })
  }

  /** Runs a step of the gateway's own code for this request (now, or from a queue's wake-up): a throw there is failed(). */
  protected guarded (step: () => void): void {
    try {
      step()
    } catch (err) {
      this.failed(err)
    }
  }

  /** A limit of the Deadline fired: by default the request ends with it. */
  protected limitFired (ending: Ending): void { this.finish(ending) }

  /** Fields of the access line only some requests have. */
  protected accessExtra (): Partial<AccessRecord> { return NO_EXTRA }

  /** Response headers arrived from upstream: the first-byte clock stops. */
  protected firstByte (status: number): void {
    this.status = status
    this.firstByteMs = this.elapsedMs()
    this.host.metrics.firstByte(this.target!.route.name, this.firstByteMs)
    // The clocks the response armed (streamIdle, tunnelIdle), as span events.
    const deadline = this.deadline!
    if (this.trace !== null) for (const p of deadline.progress()) if (p.outcome !== deadline.limits.totalOutcome) this.trace.limitArmed(p.limit, p.outcome, p.limitMs)
  }

  /** The JSON document of the gateway's error for this request. */
  protected errorDocument (ending: Ending): ErrorDocument {
    return errorDocument(ending, {
      route: this.target?.route.name ?? null,
      upstream: this.target?.upstream.name ?? null,
      requestId: this.requestId,
      elapsedMs: this.elapsedMs()
    })
  }

  /**
   * A response body chunk to the client, with backpressure: a client that cannot take more
   * pauses the upstream, and sendTimeout runs instead of streamIdle until it drains.
   */
  protected relay (res: ServerResponse, controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const deadline = this.deadline!
    deadline.touch()
    this.bytesOut += chunk.length
    if (!res.write(chunk)) {
      controller.pause()
      deadline.sendBlocked()
      res.once('drain', () => {
        if (this.ending !== null) return
        deadline.sendDrained()
        controller.resume()
      })
    }
  }
}

/** Most requests have no extra access fields: one shared empty object, not one per request. */
const NO_EXTRA: Partial<AccessRecord> = Object.freeze({})

const PROTOCOLS: Readonly<Record<string, string>> = { '1.1': 'HTTP/1.1', '2.0': 'HTTP/2.0', '1.0': 'HTTP/1.0' }

/** The access line's `protocol`: HTTP/1.1, HTTP/2.0 … (the common ones not built per request). */
function protocolOf (req: IncomingMessage): string {
  return PROTOCOLS[req.httpVersion] ?? `HTTP/${req.httpVersion}`
}

/** A request that came on an HTTP/1.1 connection; an HTTP/2 stream's request has its stream. */
export function isHttp1 (req: IncomingMessage): boolean {
  return (req as { stream?: unknown }).stream === undefined
}

export function tooLarge (max: number): Ending {
  return { outcome: 'payload_too_large', detail: `the limit is ${max} bytes` }
}
