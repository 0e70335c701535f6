// The running gateway's data plane: listeners, the current configuration generation and the
// requests in flight. Lifecycle steps (drain, reload) act through the methods here; the admin
// listener (the control plane) reads it from outside (lifecycle/serve.ts wires the two).
import type http from 'node:http'
import type { Duplex } from 'node:stream'
import type { RuntimeConfig } from '../config/runtime.ts'
import type { GatewayLog, AccessRecord } from '../observe/log.ts'
import type { GatewayMetrics } from '../observe/metrics.ts'
import { Headroom, type RequestMeasures } from '../observe/headroom.ts'
import { RecentOutcomes } from '../observe/recent.ts'
import type { Tracing } from '../observe/tracing.ts'
import type { LimitProgress } from './deadline.ts'
import { Exchange } from './forward.ts'
import { Generation } from './generation.ts'
import type { UpstreamObserver } from '../upstream/service.ts'
import { createHttp1Listener, listen, type Listener } from './listeners.ts'
import { createH2Listener } from './h2.ts'
import { ResetBudget } from './flood.ts'
import type { Ending } from './outcome.ts'
import type { Passage, PassageHost } from './passage.ts'
import { isWebSocketUpgrade, Tunnel } from './tunnel.ts'

/**
 * How long a cut waits for its responses to close. A client that does not read (an HTTP/2 stream
 * with no flow-control window left, a full socket buffer) never takes its 503 or its last bytes:
 * without a bound the drain, and so the shutdown, would wait for it past drain.timeout. Long
 * enough for a reading client to get its error record; then what is left is destroyed.
 */
const CUT_CLOSE_WAIT_MS = 2000

/** A request in flight as the live admin page shows it. */
export interface InflightRequest {
  readonly id: string
  readonly method: string
  readonly path: string
  readonly route: string
  readonly upstream: string
  readonly endpoint: string
  readonly ageMs: number
  readonly bytesIn: number
  readonly bytesOut: number
  readonly clocks: readonly LimitProgress[]
}

/** What the admin endpoints report as the gateway's state: /readyz is 200 only while serving. */
export type GatewayState = 'starting' | 'serving' | 'draining'

export interface ReloadResult {
  ok: boolean
  at: string
  errors: string[]
  /** Settings that changed but only take effect on a restart (listeners, admin, socket options). */
  restartRequired: string[]
}

export class GatewayServer implements PassageHost {
  readonly log: GatewayLog
  readonly metrics: GatewayMetrics
  #generation: Generation
  #state: GatewayState = 'starting'
  #servers: Listener[] = []
  /** Requests and WebSocket tunnels in flight, oldest first (a Set keeps insertion order). */
  readonly #inflight = new Set<Passage>()
  /**
   * The exchange of a response in flight, for a parser error that belongs to it. A Map emptied
   * when the exchange ends, not a WeakMap: V8's young-generation collector keeps a WeakMap's
   * values alive until a full collection, so every finished request (tens of KiB) was copied and
   * promoted to the old generation (scavenges of 15 ms instead of 0.6 ms under load).
   */
  readonly #exchangeOf = new Map<http.ServerResponse, Exchange>()
  #idleWaiters: Array<() => void> = []
  /** After drain.delay: new requests are refused as `draining`, responses close their connection. */
  refusing = false
  lastReload: ReloadResult | null = null
  /** Bound addresses, as HOST:PORT, in config order. */
  addresses: string[] = []
  /** What each route's traffic really does against its limits. */
  readonly headroom = new Headroom()
  /** Outcomes of the last minutes, for the live admin page. */
  readonly recent = new RecentOutcomes()
  /** OpenTelemetry, when telemetry.otlp is configured (set before the listeners start). */
  tracing: Tracing | null = null

  /** Endpoint health and queue changes, to the log and the metrics. */
  readonly #upstreamObserver: UpstreamObserver = {
    endpointChanged: (upstream, endpoint, available, reason) => {
      this.metrics.endpointUp.set({ upstream, endpoint }, available ? 1 : 0)
      this.log.endpointChanged(upstream, endpoint, available, reason)
    },
    panic: (upstream, on) => this.log.upstreamPanic(upstream, on),
    queueDepth: (upstream, depth) => this.metrics.queueDepth.set({ upstream }, depth),
    endpointsChanged: (upstream, added, removed) => {
      for (const endpoint of added) this.metrics.endpointUp.set({ upstream, endpoint }, 1)
      for (const endpoint of removed) this.metrics.endpointUp.remove({ upstream, endpoint })
      this.log.endpointsChanged(upstream, added, removed)
    },
    dnsFailed: (upstream, name, reason) => this.log.dnsFailed(upstream, name, reason)
  }

  constructor (config: RuntimeConfig, log: GatewayLog, metrics: GatewayMetrics) {
    this.log = log
    this.metrics = metrics
    this.#generation = new Generation(config, this.#upstreamObserver)
    metrics.setEndpoints(this.#generation.upstreams)
  }

  get config (): RuntimeConfig { return this.#generation.config }
  get generation (): Generation { return this.#generation }
  get state (): GatewayState { return this.#state }
  get inflight (): number { return this.#inflight.size }

  oldestInflightMs (): number {
    for (const p of this.#inflight) return p.elapsedMs()
    return 0
  }

  /** Resolves once every upstream has its endpoints (dns:// ones resolved once, or failed). */
  async ready (): Promise<void> {
    await this.#generation.ready()
    this.metrics.setEndpoints(this.#generation.upstreams)
  }

  /**
   * Binds every client listener (in config order). Worker processes pass `reusePort` and, after
   * the first worker, the ports it bound (a configured port 0 is then the same port for all).
   */
  async listen (options: { reusePort?: boolean, ports?: readonly number[] } = {}): Promise<void> {
    const config = this.config
    const sink = { access: (record: AccessRecord) => this.recordAccess(record) }
    // One budget for every HTTP/2 listener: a flood spread over connections and ports is one flood.
    const resetFlood = { budget: new ResetBudget(config.downstream.resetFlood), cut: () => this.metrics.floodGoaway() }
    for (const [i, configured] of config.listen.entries()) {
      const port = options.ports?.[i]
      const address = port === undefined ? configured : { ...configured, port }
      const create = address.kind === 'http1' ? createHttp1Listener : createH2Listener
      const listener = create(address, config.downstream, sink, {
        request: (req, res) => this.#handle(req, res),
        upgrade: (req, socket, head) => this.#tunnel(req, socket, head),
        shouldUpgrade: isWebSocketUpgrade,
        requestError: (res, ending) => this.#exchangeOf.get(res)?.requestError(ending),
        resetFlood
      })
      this.#servers.push(listener)
      this.addresses.push(await listen(listener.server, address, { reusePort: options.reusePort }))
    }
  }

  /** Readiness turns 200. */
  serving (): void {
    this.#state = 'serving'
  }

  #handle (req: http.IncomingMessage, res: http.ServerResponse): void {
    const exchange = new Exchange(this.#generation, this, req, res)
    this.#inflight.add(exchange)
    this.#exchangeOf.set(res, exchange)
    exchange.start()
  }

  #tunnel (req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const tunnel = new Tunnel(this.#generation, this, req, socket, head)
    this.#inflight.add(tunnel)
    tunnel.start()
  }

  #wakeIfIdle (): void {
    if (this.inflight === 0) for (const wake of this.#idleWaiters.splice(0)) wake()
  }

  recordAccess (record: AccessRecord): void {
    this.log.access(record)
    this.metrics.finished(record)
    this.recent.add(record.outcome)
  }

  measured (route: string, measures: RequestMeasures): void {
    this.headroom.observe(route, measures)
    this.metrics.measured(route, measures)
  }

  /** The `max` oldest requests in flight, with their running clocks (the live admin page). */
  inflightRequests (max: number): InflightRequest[] {
    const out: InflightRequest[] = []
    for (const p of this.#inflight) {
      if (out.length === max) break
      const url = p.req.url ?? ''
      const query = url.indexOf('?')
      out.push({
        id: p.requestId,
        method: p.req.method ?? '',
        // The path only: a query string may carry secrets.
        path: (query === -1 ? url : url.slice(0, query)).slice(0, 200),
        route: p.target?.route.name ?? '',
        upstream: p.target?.upstream.name ?? '',
        endpoint: p.endpoint?.url ?? '',
        ageMs: p.elapsedMs(),
        bytesIn: p.bytesIn,
        bytesOut: p.bytesOut,
        clocks: p.deadline?.progress() ?? []
      })
    }
    return out
  }

  ended (passage: Passage): void {
    this.#inflight.delete(passage)
    if (passage instanceof Exchange) this.#exchangeOf.delete(passage.res)
    // While draining, a connection whose response just ended is idle: close it now.
    if (this.refusing) for (const s of this.#servers) s.closeIdle()
    this.#wakeIfIdle()
  }

  /** Readiness turns 503 (the first step of a drain). */
  beginDrain (): void {
    this.#state = 'draining'
    this.metrics.draining(true)
  }

  /** Stop accepting connections, close idle ones; requests on open connections are refused. */
  stopAccepting (): void {
    this.refusing = true
    for (const s of this.#servers) s.stopAccepting()
  }

  /** Resolves true once nothing is in flight, false when `timeoutMs` ran out first. */
  waitIdle (timeoutMs: number): Promise<boolean> {
    if (this.inflight === 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#idleWaiters = this.#idleWaiters.filter((w) => w !== wake)
        resolve(false)
      }, timeoutMs)
      const wake = (): void => { clearTimeout(timer); resolve(true) }
      this.#idleWaiters.push(wake)
    })
  }

  /**
   * Ends every request still in flight with this outcome; resolves with how many once their
   * responses are closed, so the SSE error records are out before the process exits.
   */
  async cutAll (ending: Ending): Promise<number> {
    // Tunnels are cut too: the gateway does not parse WebSocket frames, so it cannot send a
    // close frame without risking one inside the upstream's; the client sees the connection end.
    const cut = [...this.#inflight]
    const open = new Set(cut)
    const closed = cut.map(async (p) => { await p.whenClosed(); open.delete(p) })
    for (const p of cut) p.finish(ending)
    let timer: NodeJS.Timeout | undefined
    await Promise.race([Promise.all(closed), new Promise((resolve) => { timer = setTimeout(resolve, CUT_CLOSE_WAIT_MS) })])
    clearTimeout(timer)
    for (const p of open) p.destroyClientSide()
    return cut.length
  }

  /**
   * Swaps in a new config: new requests use it, requests in flight keep theirs; upstreams whose
   * config did not change keep their pools.
   */
  async reload (config: RuntimeConfig): Promise<ReloadResult> {
    const old = this.#generation
    const restartRequired: string[] = []
    const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)
    if (!same(config.listen, old.config.listen)) restartRequired.push('listen')
    if (!same(config.admin, old.config.admin)) restartRequired.push('admin.address')
    if (config.workers !== old.config.workers) restartRequired.push('workers')
    if (!same(config.telemetry, old.config.telemetry)) restartRequired.push('telemetry')
    // The listeners read these when they are made (resetFlood's budget is shared by all of them).
    for (const key of ['headersTimeoutMs', 'idleTimeoutMs', 'maxHeaderSize', 'maxHeaderCount', 'maxConcurrentStreams', 'resetFlood', 'tcpKeepAliveMs'] as const) {
      if (!same(config.downstream[key], old.config.downstream[key])) restartRequired.push(`downstream.${key.replace(/Ms$/, '')}`)
    }
    // What only a restart applies keeps its running value in the new generation: the config in
    // effect (and /config) stays true, and the next reload still reports the pending change.
    const running = old.config
    const effective: RuntimeConfig = {
      ...config,
      listen: running.listen,
      admin: running.admin,
      workers: running.workers,
      telemetry: running.telemetry,
      downstream: {
        ...config.downstream,
        headersTimeoutMs: running.downstream.headersTimeoutMs,
        idleTimeoutMs: running.downstream.idleTimeoutMs,
        maxHeaderSize: running.downstream.maxHeaderSize,
        maxHeaderCount: running.downstream.maxHeaderCount,
        maxConcurrentStreams: running.downstream.maxConcurrentStreams,
        resetFlood: running.downstream.resetFlood,
        tcpKeepAliveMs: running.downstream.tcpKeepAliveMs
      }
    }
    const next = new Generation(effective, this.#upstreamObserver, old)
    await next.ready()
    this.#generation = next
    for (const retired of old.retiredBy(next)) void retired.retire()
    this.metrics.setEndpoints(next.upstreams)
    this.log.level = config.log.level
    this.metrics.reloaded(true)
    this.lastReload = { ok: true, at: new Date().toISOString(), errors: [], restartRequired }
    return this.lastReload
  }

  reloadFailed (errors: string[]): ReloadResult {
    this.metrics.reloaded(false)
    this.lastReload = { ok: false, at: new Date().toISOString(), errors, restartRequired: [] }
    return this.lastReload
  }

  /** Closes everything at once (after a drain, or on a second signal). */
  async close (): Promise<void> {
    for (const s of this.#servers) s.closeAll()
    await this.#generation.close()
  }
}
