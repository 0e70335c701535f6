// An upstream: its endpoints, one undici Pool each, and the balancer that picks between them.
import { Pool, buildConnector } from 'undici'
import type { UpstreamConfig } from '../config/runtime.ts'
import { LeastRequest, RoundRobin, type Balancer } from './balancer.ts'

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
  const base = buildConnector({ timeout: 0, keepAlive: true, keepAliveInitialDelay: cfg.tcpKeepAliveMs })
  return (options, callback) => {
    let settled = false
    const socket = base(options, (err, connected) => {
      if (settled) { connected?.destroy(); return }
      settled = true
      clearTimeout(timer)
      if (err !== null) callback(err, null)
      else callback(null, connected!)
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

export class Endpoint {
  readonly url: string
  readonly pool: Pool
  inflight = 0
  readonly #idleTimeout: number | 'auto'
  #hintChecked = false
  constructor (url: string, cfg: UpstreamConfig) {
    this.url = url
    this.#idleTimeout = cfg.idleTimeout
    const auto = cfg.idleTimeout === 'auto'
    this.pool = new Pool(url, {
      connections: cfg.maxConnectionsPerEndpoint,
      pipelining: 1,
      // The request's Deadline decides every cut, with its name (DESIGN.md §11).
      headersTimeout: 0,
      bodyTimeout: 0,
      // idleTimeout auto: the server's Keep-Alive hint minus 1 s (≤ 0: no reuse), else 4 s.
      keepAliveTimeout: auto ? 4000 : cfg.idleTimeout as number,
      keepAliveTimeoutThreshold: 1000,
      keepAliveMaxTimeout: auto ? 3_600_000 : cfg.idleTimeout as number,
      connect: timedConnector(cfg)
    })
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
  readonly endpoints: readonly Endpoint[]
  readonly #balancer: Balancer<Endpoint>
  constructor (cfg: UpstreamConfig) {
    this.name = cfg.name
    this.config = cfg
    this.endpoints = cfg.endpoints.map((url) => new Endpoint(url, cfg))
    this.#balancer = cfg.balance === 'round-robin' ? new RoundRobin() : new LeastRequest()
  }

  pick (): Endpoint | undefined {
    return this.#balancer.pick(this.endpoints)
  }

  /** Closes the pools once the requests already on them have ended (a reload dropped this upstream). */
  async retire (): Promise<void> {
    await Promise.all(this.endpoints.map((e) => e.pool.close()))
  }

  /** Closes the pools now, aborting what is left (shutdown). */
  async close (): Promise<void> {
    await Promise.all(this.endpoints.map((e) => e.pool.destroy()))
  }
}
