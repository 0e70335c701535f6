// The admin listener (DESIGN.md §7), separate from client traffic and loopback by default.
import http from 'node:http'
import type { RuntimeConfig, RouteConfig, Limit } from '../config/runtime.ts'

export type GatewayState = 'starting' | 'serving' | 'draining'

export interface AdminSource {
  state (): GatewayState
  config (): RuntimeConfig
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
    timeouts: {
      firstByte: limitJson(t.firstByte),
      streamIdle: limitJson(t.streamIdle),
      request: limitJson(t.request),
      maxClientTimeout: limitJson(t.maxClientTimeout)
    }
  }
}

export function effectiveConfig (config: RuntimeConfig): Record<string, unknown> {
  return {
    source: config.source,
    listen: config.listen.map((l) => l.address),
    admin: config.admin.address,
    downstream: config.downstream,
    upstreams: config.upstreams,
    routes: config.routes.map(effectiveRoute)
  }
}

function json (res: http.ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
  res.end(body)
}

export function createAdminServer (source: AdminSource): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: 'admin endpoints take GET' })
    switch (path) {
      case '/healthz': return json(res, 200, { status: 'ok' })
      case '/readyz': {
        const state = source.state()
        return json(res, state === 'serving' ? 200 : 503, { state })
      }
      case '/config': return json(res, 200, effectiveConfig(source.config()))
      default: return json(res, 404, { error: 'unknown admin endpoint', endpoints: ['/healthz', '/readyz', '/config'] })
    }
  })
}
