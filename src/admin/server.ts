// The admin listener (DESIGN.md §7), separate from client traffic and loopback by default.
import type { ServerResponse, Server } from 'node:http'
import { http } from '../node-http.ts'
import type { RuntimeConfig, RouteConfig, Limit } from '../config/runtime.ts'
import { ROUTE_TIMEOUT_NAMES } from '../config/builtins.ts'
import type { Generation } from '../gateway/generation.ts'
import type { GatewayState } from '../gateway/server.ts'
import type { HeadroomDocument } from '../observe/headroom.ts'
import { headroomDocument, liveSnapshot, LiveView, type LiveSource } from './live.ts'
import type { LiveSnapshot } from './live-page.ts'

/**
 * What the admin endpoints answer from: one gateway process (gatewayAdmin below), or the primary
 * of a worker pool, which asks its workers (lifecycle/workers.ts).
 */
export interface AdminView {
  readonly config: RuntimeConfig
  readonly state: GatewayState
  /** /readyz is 200 only when this is true. */
  ready (): boolean
  status (): Record<string, unknown> | Promise<Record<string, unknown>>
  metrics (): Promise<{ contentType: string, text: string }>
  /** The live page's state: requests in flight with their limits, outcomes, endpoints, headroom. */
  live (): LiveSnapshot | Promise<LiveSnapshot>
  headroom (): HeadroomDocument | Promise<HeadroomDocument>
}

/** What the admin endpoints read from the running gateway. */
export interface AdminSource extends LiveSource {
  readonly state: GatewayState
  readonly config: RuntimeConfig
  readonly generation: Generation
  readonly inflight: number
  oldestInflightMs (): number
  readonly lastReload: { ok: boolean, at: string, errors: string[], restartRequired: string[] } | null
  readonly metrics: { text (): Promise<string>, readonly registry: { contentType: string } }
}

function limitJson (limit: Limit): { ms: number | null, source: string } {
  return { ms: limit.ms, source: limit.source }
}

/** Each route's effective timeouts with their provenance (`default` / `defaults` / `route`). */
export function effectiveRoute (route: RouteConfig): Record<string, unknown> {
  const t = route.timeouts
  return {
    name: route.name,
    upstream: route.upstream,
    match: { pathPrefix: route.match.pathPrefix, methods: route.match.methods, host: route.match.host },
    timeouts: Object.fromEntries(ROUTE_TIMEOUT_NAMES.map((name) => [name, limitJson(t[name])]))
  }
}

export function effectiveConfig (config: RuntimeConfig): Record<string, unknown> {
  return {
    source: config.source,
    drain: config.drain,
    listen: config.listen.map((l) => l.address),
    admin: config.admin.address,
    workers: config.workers,
    downstream: config.downstream,
    upstreams: config.upstreams,
    routes: config.routes.map(effectiveRoute)
  }
}

/** Each upstream's endpoints: health, load, ejection (for /status and the live page). */
export function upstreamStates (source: AdminSource): LiveSnapshot['upstreams'] {
  const now = performance.now()
  return [...source.generation.upstreams].map(([name, service]) => ({
    name,
    // panic: no endpoint is in rotation, so all of them are used (the log says so too).
    panic: service.panic,
    // Waiting for an admission slot or for a connection (the endpoints' `queued`).
    queued: service.queued(),
    endpoints: service.endpoints.map((e) => ({
      url: e.url,
      healthy: e.available(now),
      inflight: e.inflight,
      ...(e.connectionSlots === null ? {} : { queued: e.connectionSlots.queued, maxInflight: e.connectionSlots.maxConcurrent }),
      ...(now < e.ejectedUntil ? { ejectedForMs: Math.round(e.ejectedUntil - now) } : {})
    }))
  }))
}

/** GET /status (DESIGN.md §11): state, config identity, last reload, load, upstream endpoints, headroom. */
export function status (source: AdminSource): Record<string, unknown> {
  const { config } = source
  const upstreams: Record<string, unknown> = {}
  for (const { name, ...state } of upstreamStates(source)) upstreams[name] = state
  return {
    state: source.state,
    config: { path: config.source.path, hash: config.source.hash, loadedAt: config.source.loadedAt },
    lastReload: source.lastReload,
    inflight: source.inflight,
    oldestInflightMs: source.oldestInflightMs(),
    upstreams,
    headroom: source.headroom.report(config)
  }
}

function json (res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
  res.end(body)
}

/** The admin view of one gateway process. */
export function gatewayAdmin (source: AdminSource): AdminView {
  return {
    get config () { return source.config },
    get state () { return source.state },
    ready: () => source.state === 'serving',
    status: () => status(source),
    metrics: async () => ({ contentType: source.metrics.registry.contentType, text: await source.metrics.text() }),
    live: () => liveSnapshot(source, upstreamStates(source)),
    headroom: () => headroomDocument(source.headroom, source.config)
  }
}

export function createAdminServer (view: AdminView): Server {
  const answer = (res: ServerResponse, value: Promise<unknown> | unknown, send: (value: any) => void): void => {
    Promise.resolve(value).then(send, (err: Error) => json(res, 500, { error: err.message }))
  }
  const live = new LiveView(() => view.live())
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: 'admin endpoints take GET' })
    switch (path) {
      case '/': return answer(res, live.page(res), () => {})
      case '/live': return answer(res, live.stream(res), () => {})
      case '/headroom': return answer(res, view.headroom(), (value) => json(res, 200, value))
      case '/healthz': return json(res, 200, { status: 'ok' })
      case '/readyz': return json(res, view.ready() ? 200 : 503, { state: view.state })
      case '/config': return json(res, 200, effectiveConfig(view.config))
      case '/status': return answer(res, view.status(), (value) => json(res, 200, value))
      case '/metrics': return answer(res, view.metrics(), ({ contentType, text }: { contentType: string, text: string }) => {
        res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) })
        res.end(text)
      })
      default: return json(res, 404, { error: 'unknown admin endpoint', endpoints: ['/', '/live', '/healthz', '/readyz', '/metrics', '/status', '/config', '/headroom'] })
    }
  })
}
