// An upstream: its endpoints, one undici Pool each, and the balancer that picks between them.
import { Client, Pool, buildConnector } from 'undici'
import type { UpstreamConfig } from '../config/runtime.ts'
import { LeastRequest, RoundRobin, type Balancer } from './balancer.ts'
import { Admission } from './admission.ts'
import { HealthChecker } from './health.ts'
import { MIN_RETRY_CONCURRENCY, noteSocketCounts } from './retry.ts'
import { Discovery, parseDnsEndpoint } from './discovery.ts'

/** A connect that took longer than the upstream's connectTimeout, timed by Node's own timer. */
export class ConnectTimeoutError extends Error {
  readonly code = 'LONGHAUL_CONNECT_TIMEOUT'
  readonly limitMs: number
  constructor (limitMs: number, host: string) {
    super(`connect to ${host} took longer than connectTimeout (${limitMs}ms)`)
    this.limitMs = limitMs
  }
}

/**
 * undici's connect timer ticks coarsely (500 ms steps over 1 s); ours is exact and names the
 * limit. The socket is destroyed when it fires, and a late connect is discarded.
 */
function timedConnector (cfg: UpstreamConfig): buildConnector.connector {
  // undici offers h2 by ALPN unless told not to: upstreams speak HTTP/1.1 unless they say h2.
  const h2 = cfg.protocol === 'h2'
  // useH2c (HTTP/2 with prior knowledge on http://) is in undici's connector but not in its types.
  const base = buildConnector({ timeout: 0, keepAlive: true, keepAliveInitialDelay: cfg.tcpKeepAliveMs, allowH2: h2, useH2c: h2 } as buildConnector.BuildOptions)
  return (options, callback) => {
    let settled = false
    const socket = base(options, (err, connected) => {
      if (settled) { connected?.destroy(); return }
      settled = true
      clearTimeout(timer)
      if (err !== null) return callback(err, null)
      // Registered before undici's own listener, so the error it sees already carries the counts.
      connected!.on('error', (e) => noteSocketCounts(e, connected!))
      callback(null, connected!)
    })
    const timer = setTimeout(() => {
      if (settled) return
      settled = true
      ;(socket as { destroy (): void } | undefined)?.destroy()
      callback(new ConnectTimeoutError(cfg.connectTimeoutMs, `${options.hostname}:${options.port}`), null)
    }, cfg.connectTimeoutMs)
    return socket
  }
}

/** What the gateway is told when an endpoint leaves or rejoins rotation, for logs and metrics. */
export interface UpstreamObserver {
  endpointChanged (upstream: string, endpoint: string, available: boolean, reason: string): void
  panic (upstream: string, on: boolean): void
  queueDepth (upstream: string, depth: number): void
  /** dns:// endpoints came or went. */
  endpointsChanged (upstream: string, added: string[], removed: string[]): void
  dnsFailed (upstream: string, name: string, reason: string): void
}

/** The lowest pooled idle time the stale-connection adaptation goes down to. */
const STALE_IDLE_FLOOR_MS = 250

export class Endpoint {
  readonly url: string
  /** Replaced (the old one closes gracefully) when the backend proves to close idle connections sooner. */
  pool: Pool
  inflight = 0
  /** Active health checks say so (true until they say otherwise, and when there are none). */
  healthy = true
  /** Passive outlier ejection: no new requests before this performance.now() time. */
  ejectedUntil = 0
  consecutiveFailures = 0
  /** Ejections in a row: each one lasts longer. Reset by the first success after a return. */
  ejections = 0
  readonly #idleTimeout: number | 'auto'
  #options: Pool.Options
  /** How long this endpoint's pooled connections may idle; lowered by observed stale connections. */
  #idleMs: number
  #hintChecked = false
  constructor (url: string, cfg: UpstreamConfig) {
    this.url = url
    this.#idleTimeout = cfg.idleTimeout
    const auto = cfg.idleTimeout === 'auto'
    this.#options = {
      connections: cfg.maxConnectionsPerEndpoint,
      pipelining: 1,
      // The request's Deadline decides every cut, with its name (DESIGN.md §11).
      headersTimeout: 0,
      bodyTimeout: 0,
      // idleTimeout auto: the server's Keep-Alive hint minus 1 s (≤ 0: no reuse), else 4 s.
      keepAliveTimeout: auto ? 4000 : cfg.idleTimeout as number,
      keepAliveTimeoutThreshold: 1000,
      keepAliveMaxTimeout: auto ? 3_600_000 : cfg.idleTimeout as number,
      connect: timedConnector(cfg),
      allowH2: cfg.protocol === 'h2'
    }
    this.#idleMs = auto ? 4000 : cfg.idleTimeout as number
    this.pool = new Pool(url, this.#options)
  }

  /**
   * A connection that had carried a response failed before the next one: the backend closes
   * idle connections sooner than the pool keeps them (and its Keep-Alive hint, if any, says
   * otherwise). Halve this endpoint's pooled idle time, down to 250 ms, so the race stops
   * recurring: the retry saves idempotent requests, only this saves a POST. Returns the new
   * idle time, or null when it is already at the floor.
   */
  lowerIdleAfterStale (): number | null {
    const next = Math.max(STALE_IDLE_FLOOR_MS, Math.floor(this.#idleMs / 2))
    if (next === this.#idleMs) return null
    this.#idleMs = next
    this.#options = { ...this.#options, keepAliveTimeout: next, keepAliveMaxTimeout: next }
    const old = this.pool
    this.pool = new Pool(this.url, this.#options)
    void old.close()
    return next
  }

  available (now: number): boolean {
    return this.healthy && now >= this.ejectedUntil
  }

  /**
   * A one-off client on a new connection, for the stale-connection retry: the pool could hand
   * out another idle connection the backend is closing. It closes itself after its request.
   */
  freshClient (): Client {
    return new Client(this.url, { ...this.#options, connections: undefined } as Client.Options)
  }

  /**
   * An explicit idleTimeout that is not below the server's own keep-alive (its Keep-Alive:
   * timeout= hint) would reuse connections the server is closing: the keep-alive race. The pool
   * still follows the hint (minus 1 s), but the config says otherwise, so say it, once per
   * endpoint. Returns the warning to log, or null.
   */
  checkKeepAliveHint (header: string): string | null {
    if (this.#hintChecked || this.#idleTimeout === 'auto') return null
    this.#hintChecked = true
    const match = /timeout=(\d+)/i.exec(header)
    if (match === null) return null
    const serverMs = Number(match[1]) * 1000
    if (this.#idleTimeout < serverMs) return null
    return `upstream idleTimeout (${this.#idleTimeout}ms) is not below ${this.url}'s keep-alive (Keep-Alive: timeout=${match[1]}): longhaul follows the hint (minus 1s) instead; set idleTimeout below it or use auto`
  }
}

export class UpstreamService {
  readonly name: string
  readonly config: UpstreamConfig
  /** Replaced (never mutated) when dns:// endpoints change. */
  endpoints: readonly Endpoint[]
  readonly admission: Admission | null
  /** Retries in flight, for the retry budget. */
  retriesInFlight = 0
  readonly #balancer: Balancer<Endpoint>
  readonly #observer: UpstreamObserver
  readonly #health: HealthChecker | null
  readonly #discovery: Discovery | null
  readonly #ready: Promise<void>
  #panic = false

  constructor (cfg: UpstreamConfig, observer: UpstreamObserver) {
    this.name = cfg.name
    this.config = cfg
    this.#observer = observer
    const names = cfg.endpoints.map(parseDnsEndpoint).filter((n) => n !== null)
    this.endpoints = cfg.endpoints.filter((url) => !url.startsWith('dns://')).map((url) => new Endpoint(url, cfg))
    this.#balancer = cfg.balance === 'round-robin' ? new RoundRobin() : new LeastRequest()
    this.admission = cfg.limits === null ? null : new Admission(cfg.limits, (depth) => observer.queueDepth(cfg.name, depth))
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
   * ones get no new requests, and their pools close once their requests have finished.
   */
  #resolved (urls: string[]): void {
    const statics = this.config.endpoints.filter((url) => !url.startsWith('dns://'))
    const byUrl = new Map(this.endpoints.map((e) => [e.url, e]))
    const next = [...statics, ...urls].map((url) => byUrl.get(url) ?? new Endpoint(url, this.config))
    const kept = new Set(next)
    const removed = this.endpoints.filter((e) => !kept.has(e))
    const added = next.filter((e) => !byUrl.has(e.url))
    if (added.length === 0 && removed.length === 0) return
    this.endpoints = next
    for (const e of removed) void e.pool.close()
    this.#observer.endpointsChanged(this.name, added.map((e) => e.url), removed.map((e) => e.url))
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
    return this.retriesInFlight < Math.max(MIN_RETRY_CONCURRENCY, Math.floor(budget * this.active()))
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

  /** Closes the pools once the requests already on them have ended (a reload dropped this upstream). */
  async retire (): Promise<void> {
    this.#health?.stop()
    this.#discovery?.stop()
    await Promise.all(this.endpoints.map((e) => e.pool.close()))
  }

  /** Closes the pools now, aborting what is left (shutdown). */
  async close (): Promise<void> {
    this.#health?.stop()
    this.#discovery?.stop()
    await Promise.all(this.endpoints.map((e) => e.pool.destroy()))
  }
}
