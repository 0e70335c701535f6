// An upstream: its endpoints (endpoint.ts), the balancer that picks between them, its admission
// control, retry budget and outlier ejection.
import type { UpstreamConfig } from '../config/runtime.ts'
import { Endpoint } from './endpoint.ts'
import { LeastRequest, RoundRobin, type Balancer } from './balancer.ts'
import { Admission } from './admission.ts'
import { HealthChecker } from './health.ts'
import { MIN_RETRY_CONCURRENCY } from './retry.ts'
import { Discovery, parseDnsEndpoint } from './discovery.ts'

/** What the gateway is told when an endpoint leaves or rejoins rotation, for logs and metrics. */
export interface UpstreamObserver {
  endpointChanged (upstream: string, endpoint: string, available: boolean, reason: string): void
  panic (upstream: string, on: boolean): void
  queueDepth (upstream: string, depth: number): void
  /** dns:// endpoints came or went. */
  endpointsChanged (upstream: string, added: string[], removed: string[]): void
  dnsFailed (upstream: string, name: string, reason: string): void
}

export class UpstreamService {
  readonly name: string
  readonly config: UpstreamConfig
  /** Replaced (never mutated) when dns:// endpoints change. */
  endpoints: readonly Endpoint[]
  readonly admission: Admission | null
  readonly #balancer: Balancer<Endpoint>
  readonly #observer: UpstreamObserver
  readonly #health: HealthChecker | null
  readonly #discovery: Discovery | null
  readonly #ready: Promise<void>
  #panic = false
  /** Retries in flight, for the retry budget. */
  #retriesInFlight = 0
  /** Endpoints a DNS answer removed, waiting to be idle before their pools close. */
  readonly #leaving = new Set<Endpoint>()
  /** Set by retire(): resolves once nothing is in flight, queued or about to retry here. */
  #retired: (() => void) | null = null

  constructor (cfg: UpstreamConfig, observer: UpstreamObserver) {
    this.name = cfg.name
    this.config = cfg
    this.#observer = observer
    const names = cfg.endpoints.map(parseDnsEndpoint).filter((n) => n !== null)
    this.endpoints = cfg.endpoints.filter((url) => !url.startsWith('dns://')).map((url) => this.#endpoint(url))
    this.#balancer = cfg.balance === 'round-robin' ? new RoundRobin() : new LeastRequest()
    this.admission = cfg.limits === null ? null : new Admission(cfg.limits, () => this.#queueChanged())
    this.#health = cfg.healthCheck === null ? null : new HealthChecker(this, cfg.healthCheck, (e, healthy, reason) => this.#changed(e, healthy, reason))
    this.#health?.start()
    this.#discovery = names.length === 0
      ? null
      : new Discovery(names, cfg.dns, (urls) => this.#resolved(urls), (name, reason) => observer.dnsFailed(cfg.name, name, reason))
    this.#ready = this.#discovery?.start() ?? Promise.resolve()
  }

  /** Resolves once dns:// endpoints had their first answer (or failure). */
  ready (): Promise<void> { return this.#ready }

  /**
   * A new DNS answer: endpoints still listed keep their pools and state; new ones join; gone
   * ones get no new requests, and their pools close once nothing is in flight on them or waiting
   * for one of their connections (closeWhenIdle()).
   */
  #resolved (urls: string[]): void {
    const statics = this.config.endpoints.filter((url) => !url.startsWith('dns://'))
    const byUrl = new Map(this.endpoints.map((e) => [e.url, e]))
    const next = [...statics, ...urls].map((url) => byUrl.get(url) ?? this.#endpoint(url))
    const kept = new Set(next)
    const removed = this.endpoints.filter((e) => !kept.has(e))
    const added = next.filter((e) => !byUrl.has(e.url))
    if (added.length === 0 && removed.length === 0) return
    this.endpoints = next
    for (const e of removed) this.#leaving.add(e)
    this.#closeWhenIdle()
    this.#observer.endpointsChanged(this.name, added.map((e) => e.url), removed.map((e) => e.url))
  }

  #endpoint (url: string): Endpoint {
    return new Endpoint(url, this.config, () => this.#queueChanged(), () => this.#settled())
  }

  /**
   * A try, a tunnel or a wait ended. Closing a pool is held back while anything could still be
   * sent on it: undici refuses a dispatch on a closed pool (UND_ERR_CLOSED, then
   * UND_ERR_DESTROYED), and a request queued for a slot or about to retry would fail with it.
   * Checked in a microtask: a slot handed on is taken (and counted) synchronously after it is
   * given back.
   */
  #settled (): void {
    if (this.#retired !== null || this.#leaving.size > 0) queueMicrotask(() => this.#closeWhenIdle())
  }

  #closeWhenIdle (): void {
    for (const e of this.#leaving) {
      if (!e.idle) continue
      this.#leaving.delete(e)
      void e.pool.close()
    }
    if (this.#retired !== null && this.active() === 0 && this.queued() === 0 && this.#retriesInFlight === 0) {
      const retired = this.#retired
      this.#retired = null
      retired()
    }
  }

  /**
   * Requests waiting: for an admission slot (`limits`), and for a connection to an endpoint
   * (maxConnectionsPerEndpoint). Both are queues in the open: one count, one metric.
   */
  queued (): number {
    let n = this.admission?.queued ?? 0
    for (const e of this.endpoints) n += e.connectionSlots?.queued ?? 0
    return n
  }

  #queueChanged (): void {
    this.#observer.queueDepth(this.name, this.queued())
    this.#settled()
  }

  get panic (): boolean { return this.#panic }

  /** Requests in flight on every endpoint. */
  active (): number {
    let n = 0
    for (const e of this.endpoints) n += e.inflight
    return n
  }

  /** Envoy's retry budget: retries in flight stay under a share of active requests (at least 3). */
  retryBudgetAllows (budget: number): boolean {
    return this.#retriesInFlight < Math.max(MIN_RETRY_CONCURRENCY, Math.floor(budget * this.active()))
  }

  /** A decided retry holds a share of the budget until its try ends: releaseRetry() once. */
  holdRetry (): void { this.#retriesInFlight++ }
  releaseRetry (): void {
    this.#retriesInFlight--
    this.#settled()
  }

  /**
   * An endpoint for the next attempt: available ones not tried yet, then available ones, and when
   * none is available, all of them (panic: failing everything would be worse), said in the log.
   */
  pick (tried?: ReadonlySet<Endpoint>): Endpoint | undefined {
    const now = performance.now()
    let all = true
    for (const e of this.endpoints) if (!e.available(now) || tried?.has(e) === true) { all = false; break }
    if (all) return this.#balancer.pick(this.endpoints)
    const available = this.endpoints.filter((e) => e.available(now))
    if (available.length === 0) {
      if (!this.#panic) { this.#panic = true; this.#observer.panic(this.name, true) }
      const untried = this.endpoints.filter((e) => tried?.has(e) !== true)
      return this.#balancer.pick(untried.length > 0 ? untried : this.endpoints)
    }
    if (this.#panic) { this.#panic = false; this.#observer.panic(this.name, false) }
    const untried = tried === undefined ? available : available.filter((e) => !tried.has(e))
    return this.#balancer.pick(untried.length > 0 ? untried : available)
  }

  /** A response, or a failure that is not the endpoint's fault: the failure streak ends. */
  succeeded (e: Endpoint): void {
    e.consecutiveFailures = 0
    if (e.ejectedUntil !== 0 && performance.now() >= e.ejectedUntil) {
      e.ejectedUntil = 0
      e.ejections = 0
    }
  }

  /** A connect failure, a reset before the response or a 5xx: enough in a row eject the endpoint. */
  failed (e: Endpoint, reason: string): void {
    const outlier = this.config.outlier
    if (++e.consecutiveFailures < outlier.consecutiveFailures) return
    const now = performance.now()
    if (now < e.ejectedUntil) return
    e.consecutiveFailures = 0
    e.ejections++
    const forMs = Math.min(outlier.maxEjectForMs, outlier.ejectForMs * e.ejections)
    const until = now + forMs
    e.ejectedUntil = until
    this.#changed(e, false, `ejected for ${forMs}ms after ${outlier.consecutiveFailures} failures in a row (last: ${reason})`)
    setTimeout(() => {
      if (e.ejectedUntil !== until) return
      // Node's timers count from the event loop's cached clock, so this one can fire a little
      // before performance.now() reaches `until`: the ejection ends now, or the endpoint would
      // stay out of rotation in the log and metrics while pick() uses it again. Not 0: the
      // first success after the return still resets the streak of ejections (succeeded()).
      e.ejectedUntil = Math.min(until, performance.now())
      if (e.healthy) this.#changed(e, true, 'ejection ended')
    }, forMs).unref()
  }

  #changed (e: Endpoint, available: boolean, reason: string): void {
    this.#observer.endpointChanged(this.name, e.url, available && e.available(performance.now()), reason)
  }

  /**
   * A reload dropped this upstream: its pools close once nothing is in flight on it, waiting
   * for a slot or a connection, or holding a retry (closeWhenIdle()). No time bound of its own:
   * each request of the old generation has its deadline, and undici's close() would wait for
   * requests in flight all the same.
   */
  async retire (): Promise<void> {
    this.#health?.stop()
    this.#discovery?.stop()
    await new Promise<void>((resolve) => {
      this.#retired = resolve
      this.#closeWhenIdle()
    })
    await Promise.all([...this.endpoints, ...this.#leaving].map((e) => e.pool.close()))
  }

  /** Closes the pools now, aborting what is left (shutdown). */
  async close (): Promise<void> {
    this.#health?.stop()
    this.#discovery?.stop()
    await Promise.all(this.endpoints.map((e) => e.pool.destroy()))
  }
}
