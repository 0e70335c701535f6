// The tries of one proxied request, as one dispatch wrapper in undici's style (STYLE.md §1.2):
// it picks an endpoint for each try, retries by the route's policy (backoff, the retry budget,
// the stale-connection retry and its idle adaptation), keeps the outlier bookkeeping, and hands
// only the winning try's callbacks to the request. Retries happen only before any response byte
// went downstream (STYLE.md §1.3), so the request never sees a try it does not keep.
import type { Dispatcher } from 'undici'
import type { RouteConfig } from '../config/runtime.ts'
import type { UpstreamService } from '../upstream/service.ts'
import type { Endpoint, EndpointDispatchOptions } from '../upstream/endpoint.ts'
import type { QueueTicket } from '../upstream/admission.ts'
import { backoffMs, countsAgainstBudget, parseRetryAfter, retryAfterFailure, retryHeldFailure, retryOnStatus, type AttemptContext, type HeldFailure, type RetryReason } from '../upstream/retry.ts'
import { classifyFailure, GatewayAbort, TryReplaced, type Failure } from './classify.ts'
import type { Ending } from './outcome.ts'
import { withTraceContext, type AttemptTrace, type RequestTrace } from '../observe/tracing.ts'

type DispatchController = Dispatcher.DispatchController
export type ResponseHeaders = Record<string, string | string[] | undefined>

/** How a request (or a tunnel) ends that waited for a connection slot of `endpoint` in vain. */
export function connectionQueueTimedOut (endpoint: Endpoint): Ending {
  const limitMs = endpoint.connectionSlots?.queueTimeoutMs
  const detail = `no connection to ${endpoint.url} came free (maxConnectionsPerEndpoint) within the queue timeout`
  return limitMs === undefined ? { outcome: 'overloaded', detail } : { outcome: 'overloaded', detail, limitMs }
}

/** The winning try's callbacks, as the request sees them. */
export interface WinningTry {
  onResponseStart (controller: DispatchController, statusCode: number, headers: ResponseHeaders): void
  onResponseData (controller: DispatchController, chunk: Buffer): void
  onResponseEnd (): void
  /** The last try failed and no retry is left: the failure ends the request. */
  onResponseError (failure: Failure): void
}

/** The request as each try sends it. */
export interface TryRequest {
  readonly method: string
  /** Built per try: the headers carry the budget left at that moment. */
  headers (): Dispatcher.DispatchOptions['headers']
  readonly body: Buffer | AsyncIterable<Buffer> | null
  /** The body can still be sent again (none, buffered, or never started). */
  replayable (): boolean
}

export interface AttemptsHost {
  retried (reason: RetryReason): void
  upstreamWarning (endpoint: string, warning: string): void
  /** The request's span (telemetry configured): each try gets a child span, sent upstream as traceparent. */
  readonly trace?: RequestTrace | null
  /** Runs a step of the loop from a timer or a queue (a backoff, a freed connection): a throw there ends the request as internal_error, never the process or another request. */
  guarded (step: () => void): void
}

/** One try at one endpoint: passes undici's callbacks on while it is the current try. */
class Try implements Dispatcher.DispatchHandler {
  readonly #attempts: Attempts
  readonly endpoint: Endpoint
  readonly retry: RetryReason | null
  /** The pool it was sent on (the endpoint's, when it went out): a stale reset lowers its idle time once per pool. */
  pool: Dispatcher | null = null
  controller: DispatchController | null = null
  /** Its endpoint slot and budget share were given back (once). */
  released = false
  /** Replaced by a retry: its callbacks no longer count (undici may call them synchronously from abort()). */
  replaced = false
  /** Its span, and what ended it: the upstream's status, the failure's outcome. */
  trace: AttemptTrace | null = null
  status: number | null = null
  failure: string | null = null

  constructor (attempts: Attempts, endpoint: Endpoint, retry: RetryReason | null) {
    this.#attempts = attempts
    this.endpoint = endpoint
    this.retry = retry
  }

  get live (): boolean { return this.#attempts.current === this && !this.replaced }

  onRequestStart (controller: DispatchController): void { this.#attempts.tryStarted(this, controller) }
  onResponseStart (controller: DispatchController, statusCode: number, headers: ResponseHeaders): void {
    // undici hands interim responses (103 Early Hints) here too: the answer is the final one after them.
    if (statusCode < 200) return
    if (this.live) this.#attempts.tryAnswered(this, controller, statusCode, headers)
  }

  onResponseData (controller: DispatchController, chunk: Buffer): void {
    if (this.live) this.#attempts.handler.onResponseData(controller, chunk)
  }

  onResponseEnd (): void {
    if (this.live) this.#attempts.tryEnded(this)
    else this.#attempts.release(this)
  }

  onResponseError (_controller: DispatchController | null, err: Error): void {
    if (this.live) this.#attempts.tryFailed(this, err)
    else this.#attempts.release(this)
  }
}

export class Attempts {
  readonly handler: WinningTry
  readonly #upstream: UpstreamService
  readonly #route: RouteConfig
  readonly #request: TryRequest
  readonly #path: string
  readonly #host: AttemptsHost
  /** The backoff's jitter (injectable for unit tests). */
  readonly #random: () => number
  current: Try | null = null
  count = 0
  /** Set once the request ended: no more tries, and a try still connecting is aborted with it. */
  #ending: Ending | null = null
  #responseStarted = false
  /**
   * The winning try's response headers are held by the request (the first-event gate,
   * sse.holdHeaders): nothing went downstream yet, so its failures are still retried.
   */
  #held = false
  /** The winning try finished (end or error): nothing left to abort. */
  #upstreamDone = false
  readonly #tried = new Set<Endpoint>()
  #staleRetried = false
  /** A decided retry holds a share of the upstream's retry budget until its try is released. */
  #budgetHeld = false
  #backoff: NodeJS.Timeout | null = null
  /** Waiting for a connection slot of a capped endpoint. */
  #waiting: QueueTicket | null = null

  constructor (upstream: UpstreamService, route: RouteConfig, path: string, request: TryRequest, handler: WinningTry, host: AttemptsHost, random: () => number = Math.random) {
    this.#random = random
    this.#upstream = upstream
    this.#route = route
    this.#path = path
    this.#request = request
    this.handler = handler
    this.#host = host
  }

  get endpoint (): Endpoint | null { return this.current?.endpoint ?? null }

  start (): void { this.#dispatch(null) }

  /** The request ended, whatever the outcome: no more tries; the one in progress is aborted. */
  end (ending: Ending): void {
    if (this.#ending !== null) return
    this.#ending = ending
    if (this.#backoff !== null) clearTimeout(this.#backoff)
    this.#releaseBudget()
    this.#waiting?.cancel()
    this.#waiting = null
    const current = this.current
    if (current === null) return
    if (!this.#upstreamDone) {
      if (ending.outcome !== 'ok') current.failure = ending.outcome
      current.controller?.abort(new GatewayAbort(ending))
    }
    this.release(current)
  }

  /** One try at an endpoint (a different one from earlier tries when there is one). */
  #dispatch (retry: RetryReason | null): void {
    if (this.#ending !== null) return
    const endpoint = this.#upstream.pick(this.#tried)
    if (endpoint === undefined) return this.handler.onResponseError({ kind: 'other', stale: false, reason: 'no endpoint', ending: { outcome: 'upstream_unavailable', detail: 'the upstream has no endpoint' } })
    this.#tried.add(endpoint)
    // Every connection maxConnectionsPerEndpoint allows may be busy: then the try waits for one
    // in the open (counted in the queue depth, bounded), never silently in undici's pool (DESIGN.md §1.4).
    const ticket = endpoint.acquire(() => {
      this.#waiting = null
      // Run now, or on the stack of the request that freed the connection: its throw is ours.
      this.#host.guarded(() => this.#send(endpoint, retry))
    }, () => {
      this.#waiting = null
      this.handler.onResponseError({ kind: 'other', stale: false, reason: 'connection queue timeout', ending: connectionQueueTimedOut(endpoint) })
    })
    if (ticket !== null) this.#waiting = ticket
  }

  /** Sends the try, which holds its endpoint (acquire()) until release(). */
  #send (endpoint: Endpoint, retry: RetryReason | null): void {
    const attempt = new Try(this, endpoint, retry)
    this.current = attempt
    this.count++
    const fresh = retry === 'stale_connection' ? endpoint.freshClient() : null
    attempt.pool = fresh ?? endpoint.pool
    const trace = this.#host.trace
    if (trace != null) attempt.trace = trace.attempt(endpoint.url, this.count)
    const headers = this.#request.headers()
    const options: EndpointDispatchOptions = {
      path: this.#path,
      method: this.#request.method,
      servername: endpoint.servername,
      headers: attempt.trace === null ? headers : withTraceContext(headers as string[], attempt.trace.headers),
      // undici takes any async iterable as a body (its types list only streams and buffers).
      body: this.#request.body as Dispatcher.DispatchOptions['body']
    }
    ;(fresh ?? endpoint.pool).dispatch(options, attempt)
    // The one-off client closes once its request is done.
    if (fresh !== null) void fresh.close()
  }

  /** Gives back what a try holds: its endpoint slot and its retry budget share. */
  release (attempt: Try): void {
    if (attempt.released) return
    attempt.released = true
    attempt.trace?.end(attempt.failure, attempt.status)
    attempt.endpoint.release()
    if (attempt.retry !== null) this.#releaseBudget()
  }

  #releaseBudget (): void {
    if (!this.#budgetHeld) return
    this.#budgetHeld = false
    this.#upstream.releaseRetry()
  }

  #context (): AttemptContext {
    return {
      method: this.#request.method,
      replayable: this.#request.replayable(),
      attempts: this.count,
      staleRetried: this.#staleRetried,
      budgetAllows: this.#upstream.retryBudgetAllows(this.#route.retry.budget)
    }
  }

  /**
   * Waits (backoff) and tries again; the request's deadline keeps running, and a client that
   * leaves ends it. The retry holds its budget share from now, so failures that arrive together
   * cannot all pass the budget check before any of their retries is sent.
   */
  #retry (reason: RetryReason, delayMs: number): void {
    if (reason === 'stale_connection') this.#staleRetried = true
    if (countsAgainstBudget(reason)) {
      this.#budgetHeld = true
      this.#upstream.holdRetry()
    }
    this.#host.retried(reason)
    if (delayMs <= 0) return this.#dispatch(reason)
    this.#backoff = setTimeout(() => {
      this.#backoff = null
      this.#host.guarded(() => this.#dispatch(reason))
    }, delayMs)
  }

  tryStarted (attempt: Try, controller: DispatchController): void {
    // A try that was replaced, or a request that ended while it waited for a connection, is
    // aborted as soon as it has one.
    if (!attempt.live || this.#ending !== null) controller.abort(new GatewayAbort(this.#ending ?? { outcome: 'client_aborted' }))
    else attempt.controller = controller
  }

  tryFailed (attempt: Try, err: Error): void {
    if (this.#ending !== null) return
    const held = this.#held
    this.#held = false
    // A reset of a held response came after its headers: no keep-alive race, whatever was read.
    const failure = held ? heldReset(classifyFailure(err, false)) : classifyFailure(err, this.#responseStarted)
    attempt.failure = failure.ending.outcome
    this.release(attempt)
    if (!this.#responseStarted) {
      if (failure.kind !== 'other') this.#upstream.failed(attempt.endpoint, failure.reason)
      if (failure.stale) {
        const idleMs = attempt.endpoint.lowerIdleAfterStale(attempt.pool)
        if (idleMs !== null) this.#host.upstreamWarning(attempt.endpoint.url, `a pooled connection failed as it was reused: the endpoint closes idle connections sooner than longhaul kept them; its pooled idle time is now ${idleMs}ms`)
      }
      const reason = retryAfterFailure(this.#route.retry, failure, this.#context())
      if (reason !== null) {
        // An unstarted streaming body was never read: it can go with the next try.
        const delay = reason === 'stale_connection' ? 0 : backoffMs(this.#route.retry, this.count, null, this.#random)
        return this.#retry(reason, delay)
      }
    }
    this.#upstreamDone = true
    this.handler.onResponseError(failure)
  }

  tryAnswered (attempt: Try, controller: DispatchController, statusCode: number, headers: ResponseHeaders): void {
    if (this.#ending !== null) return
    const upstream = this.#upstream
    attempt.status = statusCode
    if (statusCode >= 500) upstream.failed(attempt.endpoint, `status ${statusCode}`)
    else upstream.succeeded(attempt.endpoint)
    const reason = retryOnStatus(this.#route.retry, statusCode, this.#context())
    if (reason !== null) {
      // Nothing went downstream yet: drop this answer and try again.
      attempt.replaced = true
      attempt.failure = `status ${statusCode}: ${reason}`
      this.release(attempt)
      controller.abort(new TryReplaced(`status ${statusCode}`))
      return this.#retry(reason, backoffMs(this.#route.retry, this.count, parseRetryAfter(headers['retry-after']), this.#random))
    }
    this.#responseStarted = true
    const keepAlive = headers['keep-alive']
    if (typeof keepAlive === 'string') {
      const warning = attempt.endpoint.checkKeepAliveHint(keepAlive)
      if (warning !== null) this.#host.upstreamWarning(attempt.endpoint.url, warning)
    }
    this.handler.onResponseStart(controller, statusCode, headers)
  }

  /** The request holds the response headers it was just given (the first-event gate): no response started yet. */
  holdResponse (): void {
    this.#held = true
    this.#responseStarted = false
  }

  /** The held headers went downstream: from now on the response has started. */
  releaseResponse (): void {
    this.#held = false
    this.#responseStarted = true
  }

  /**
   * A held response failed before its first event: an in-band error record, or a firstEvent cut.
   * Retried on another endpoint when the policy says so, else the request ends with `ending`.
   */
  heldFailed (failure: HeldFailure, ending: Ending): void {
    const attempt = this.current
    if (this.#ending !== null || attempt === null || !this.#held) return
    this.#held = false
    this.#upstream.failed(attempt.endpoint, failure)
    const reason = retryHeldFailure(this.#route.retry, failure, this.#context())
    if (reason === null) return this.handler.onResponseError({ kind: 'other', stale: false, reason: failure, ending })
    attempt.replaced = true
    this.release(attempt)
    attempt.controller?.abort(new TryReplaced(failure))
    this.#retry(reason, backoffMs(this.#route.retry, this.count, null))
  }

  tryEnded (attempt: Try): void {
    if (this.#ending !== null) return
    this.release(attempt)
    this.#upstreamDone = true
    this.handler.onResponseEnd()
  }
}

/** A reset while the headers were held: a reset before the response, as far as retries go. */
function heldReset (failure: Failure): Failure {
  if (failure.ending.outcome !== 'upstream_reset') return failure
  return { ...failure, stale: false, ending: { outcome: 'upstream_reset', detail: 'after the response headers (held by sse.holdHeaders), before the first event' } }
}
