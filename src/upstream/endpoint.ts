// One upstream endpoint: its undici Pool (with longhaul's connector), its in-flight count, which
// only acquire()/release() change, and the state health checks and outlier ejection keep on it.
import { Client, Pool, buildConnector, type Dispatcher } from 'undici'
import type { Socket } from 'node:net'
import type { UpstreamConfig } from '../config/runtime.ts'
import { AUTO_IDLE_MS } from '../config/builtins.ts'
import { Admission, type QueueTicket } from './admission.ts'

/**
 * Gives a socket's own error (ECONNRESET, EPIPE: they carry no socket) the byte counts undici
 * puts on its SocketError, so a stale connection can be told from a fresh one (gateway/classify.ts).
 * Runs as the socket's first 'error' listener, before undici hands the error to the request.
 */
function noteSocketCounts (err: Error, socket: { bytesRead: number, bytesWritten: number }): void {
  const e = err as Error & { socket?: unknown }
  e.socket ??= { bytesRead: socket.bytesRead, bytesWritten: socket.bytesWritten }
}

/** Errors of a connect (TCP, or the TLS handshake) that never became a connection: nothing was sent. */
const connectFailures = new WeakSet<Error>()

/** The error ended a connect, before any byte of a request went out (gateway/classify.ts). */
export function failedToConnect (err: Error): boolean {
  return connectFailures.has(err)
}

/** Says that `err` ended a connect (the connector's failure path). */
export function noteConnectFailure (err: Error): void {
  connectFailures.add(err)
}

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
 * Made outside the connect closure: a listener made inside it would keep that closure's
 * scope (the spent connect timer, the options, undici's callback) for the connection's life.
 */
function noteCountsOnError (socket: Socket): void {
  socket.on('error', (e: Error) => noteSocketCounts(e, socket))
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
    // TLS names the endpoint (SNI and the certificate check use its URL's host), never the
    // client's Host header, which undici would take from the forwarded request otherwise.
    const socket = base({ ...options, servername: undefined }, (err, connected) => {
      if (settled) { connected?.destroy(); return }
      settled = true
      clearTimeout(timer)
      if (err !== null) {
        noteConnectFailure(err)
        return callback(err, null)
      }
      // Registered before undici's own listener, so the error it sees already carries the counts.
      noteCountsOnError(connected!)
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

/**
 * Streams one HTTP/2 connection carries (undici's maxConcurrentStreams, set explicitly so that
 * the gateway knows its pool's capacity): under maxConnectionsPerEndpoint, an endpoint takes
 * that many requests at once per connection.
 */
export const H2_STREAMS_PER_CONNECTION = 100

/** The lowest pooled idle time the stale-connection adaptation goes down to. */
const STALE_IDLE_FLOOR_MS = 250

/** What a request to an endpoint is sent with: undici reads `servername` (core/request.js), its types omit it. */
export type EndpointDispatchOptions = Dispatcher.DispatchOptions & { servername: string }

export class Endpoint {
  readonly url: string
  /**
   * Given with every request: undici otherwise derives a request's TLS name from its Host header
   * (a parse per request), and on https:// reconnects whenever that name changes.
   */
  readonly servername: string
  /** Replaced (the old one closes gracefully) when the backend proves to close idle connections sooner. */
  pool: Pool
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
  #inflight = 0
  /**
   * Under maxConnectionsPerEndpoint: requests the pool can carry at once, and those waiting for
   * one of them, in the open (counted, bounded by the queue timeout). Null when uncapped: undici
   * then never makes a request wait for a connection.
   */
  readonly connectionSlots: Admission | null
  /** Told after each release(): the upstream waits for its endpoints to be idle before closing them. */
  readonly #onRelease: () => void
  constructor (url: string, cfg: UpstreamConfig, onQueueDepth: () => void = () => {}, onRelease: () => void = () => {}) {
    this.url = url
    this.servername = new URL(url).hostname
    this.#onRelease = onRelease
    this.#idleTimeout = cfg.idleTimeout
    const auto = cfg.idleTimeout === 'auto'
    this.#options = {
      connections: cfg.maxConnectionsPerEndpoint,
      pipelining: 1,
      // The request's Deadline decides every cut, with its name (DESIGN.md §11).
      headersTimeout: 0,
      bodyTimeout: 0,
      // idleTimeout auto: the server's Keep-Alive hint minus 1 s (≤ 0: no reuse), else AUTO_IDLE_MS.
      keepAliveTimeout: auto ? AUTO_IDLE_MS : cfg.idleTimeout as number,
      keepAliveTimeoutThreshold: 1000,
      keepAliveMaxTimeout: auto ? 3_600_000 : cfg.idleTimeout as number,
      connect: timedConnector(cfg),
      allowH2: cfg.protocol === 'h2',
      maxConcurrentStreams: H2_STREAMS_PER_CONNECTION
    }
    this.#idleMs = auto ? AUTO_IDLE_MS : cfg.idleTimeout as number
    this.pool = new Pool(url, this.#options)
    const cap = cfg.maxConnectionsPerEndpoint
    this.connectionSlots = cap === null
      ? null
      : new Admission({ maxConcurrent: cfg.protocol === 'h2' ? cap * H2_STREAMS_PER_CONNECTION : cap, maxQueued: Number.POSITIVE_INFINITY, queueTimeoutMs: cfg.connectionQueueTimeoutMs }, onQueueDepth)
  }

  /**
   * A connection of `pool` that had carried a response failed before the next one: the backend
   * closes idle connections sooner than the pool keeps them (and its Keep-Alive hint, if any, says
   * otherwise). Halve this endpoint's pooled idle time, down to 250 ms, so the race stops
   * recurring: the retry saves idempotent requests, only this saves a POST. Once per pool: a
   * burst of stale resets from one pool is one observation, so failures from a pool already
   * replaced change nothing. Returns the new idle time, or null when nothing changed.
   */
  lowerIdleAfterStale (pool: Dispatcher | null): number | null {
    if (pool !== this.pool) return null
    const next = Math.max(STALE_IDLE_FLOOR_MS, Math.floor(this.#idleMs / 2))
    if (next === this.#idleMs) return null
    this.#idleMs = next
    this.#options = { ...this.#options, keepAliveTimeout: next, keepAliveMaxTimeout: next }
    const old = this.pool
    this.pool = new Pool(this.url, this.#options)
    void old.close()
    return next
  }

  /** Requests in flight on this endpoint (the balancer and the retry budget read it). */
  get inflight (): number { return this.#inflight }

  /** Nothing in flight on this endpoint and nothing waiting for one of its connections. */
  get idle (): boolean { return this.#inflight === 0 && (this.connectionSlots?.queued ?? 0) === 0 }

  /**
   * The one way onto this endpoint, for a request's try and a tunnel alike: takes one of its
   * connection slots (when capped) and counts it in flight, then runs `start`: now, or once a
   * slot comes free (the wait is in the open, counted in the queue depth). Returns the ticket
   * of that wait, or null when `start` already ran. `timedOut` runs instead when no slot came
   * free within connectionQueueTimeout. release() exactly once after `start` ran.
   */
  acquire (start: () => void, timedOut: () => void): QueueTicket | null {
    const slots = this.connectionSlots
    if (slots === null || slots.tryEnter()) {
      this.#inflight++
      start()
      return null
    }
    return slots.wait(() => {
      this.#inflight++
      start()
    }, timedOut)
  }

  /** The try or tunnel is over: its slot goes to the first one waiting for it. */
  release (): void {
    this.#inflight--
    this.connectionSlots?.leave()
    this.#onRelease()
  }

  available (now: number): boolean {
    return this.healthy && now >= this.ejectedUntil
  }

  /**
   * A one-off client on a new connection, for the stale-connection retry: the pool could hand
   * out another idle connection the backend is closing. It closes itself after its request.
   * It counts against maxConnectionsPerEndpoint as the request it carries does: that request
   * holds one of the endpoint's connection slots (acquire()), so the pool carries one request
   * fewer meanwhile. The pool may keep an idle connection open beside it until its idle time.
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

