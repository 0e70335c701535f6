// Turns a schema-valid config into the immutable RuntimeConfig, with cross-checks that no
// single key can make: references, uniqueness, contradictions, shadowed routes.
import { dnsSettings, type ParsedConfig, type RouteTimeoutsInput } from './schema.ts'
import { builtinTimeout, DEFAULT_QUEUE_TIMEOUT } from './builtins.ts'
import { didYouMean, type ConfigPath, type Severity } from './diagnostics.ts'
import { formatDuration, parseDuration } from './units.ts'
import { checkTlsFiles, resolveTlsFiles, TlsFileError } from './tls.ts'
import type { Limit, ListenAddress, ListenerConfig, RetryPolicy, RouteConfig, RouteTimeouts, RuntimeConfig, UpstreamConfig } from './runtime.ts'

export type Report = (severity: Severity, path: ConfigPath, message: string) => void

type Parsed = ParsedConfig
type ParsedRoute = Parsed['routes'][number]
type TimeoutKey = keyof RouteTimeoutsInput

/** dns:// settings of an upstream without a dns block: the schema's defaults. */
const DNS_DEFAULTS = dnsSettings.parse({})

function splitAddress (address: string): ListenAddress {
  const colon = address.lastIndexOf(':')
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '')
  return { address, host, port: Number(address.slice(colon + 1)) }
}

const lt = (a: number | null, b: number | null): boolean => a !== null && (b === null || a < b)

function resolveTimeouts (route: ParsedRoute, parsed: Parsed, path: ConfigPath, report: Report): RouteTimeouts {
  const defaults = parsed.defaults.timeouts
  const own = route.timeouts ?? {}
  /** Where a key was written, for positions in messages: the route, else `defaults`. */
  const where = (key: TimeoutKey): ConfigPath => own[key] !== undefined ? [...path, 'timeouts', key] : ['defaults', 'timeouts', key]
  const pick = (key: TimeoutKey): Limit | undefined => {
    if (own[key] !== undefined) return { ms: own[key], source: 'route' }
    if (defaults[key] !== undefined) return { ms: defaults[key], source: 'defaults' }
    return undefined
  }
  /** The built-in value; `follows` is the limit it follows when it follows one (request, streamIdle). */
  const builtin = (key: TimeoutKey, follows: number | null): Limit => {
    const value = builtinTimeout(key)
    return { ms: typeof value === 'number' ? value : follows, source: 'default' }
  }
  const request = pick('request') ?? builtin('request', null)
  const streamIdle = pick('streamIdle') ?? builtin('streamIdle', request.ms)
  const explicitFirstByte = pick('firstByte')
  const firstByte = explicitFirstByte ?? builtin('firstByte', request.ms)
  const explicitFirstEvent = pick('firstEvent')
  const firstEvent = explicitFirstEvent ?? builtin('firstEvent', streamIdle.ms)
  const maxClientTimeout = pick('maxClientTimeout') ?? builtin('maxClientTimeout', request.ms)
  const tunnelIdle = pick('tunnelIdle') ?? builtin('tunnelIdle', request.ms)

  if (request.ms === null && explicitFirstByte === undefined) {
    report('error', where('request'), 'request: none needs an explicit firstByte (a duration, or none written on purpose): otherwise a request could wait for response headers forever')
  }
  if (explicitFirstByte !== undefined && lt(request.ms, firstByte.ms)) {
    if (lt(maxClientTimeout.ms, firstByte.ms)) {
      report('error', where('firstByte'), `firstByte (${formatDuration(firstByte.ms)}) can never fire: request (${formatDuration(request.ms)}) and maxClientTimeout (${formatDuration(maxClientTimeout.ms)}) end the request first`)
    } else {
      report('warning', where('firstByte'), `firstByte (${formatDuration(firstByte.ms)}) is longer than request (${formatDuration(request.ms)}): it only matters for clients that extend their deadline with x-longhaul-timeout-ms`)
    }
  }
  // Only a streamIdle somebody wrote: the built-in 5m above a short request is no mistake.
  if (streamIdle.source !== 'default' && streamIdle.ms !== null && request.ms !== null && streamIdle.ms >= request.ms) {
    report('warning', where('streamIdle'), `streamIdle (${formatDuration(streamIdle.ms)}) is not shorter than request (${formatDuration(request.ms)}): a silent stream is always cut by request first`)
  }
  if (explicitFirstEvent !== undefined && firstEvent.ms !== null && request.ms !== null && firstEvent.ms >= request.ms) {
    report('warning', where('firstEvent'), `firstEvent (${formatDuration(firstEvent.ms)}) is not shorter than request (${formatDuration(request.ms)}): a stream that never answers is always cut by request first`)
  }
  if (lt(maxClientTimeout.ms, request.ms)) {
    report('error', where('maxClientTimeout'), `maxClientTimeout (${formatDuration(maxClientTimeout.ms)}) is shorter than request (${formatDuration(request.ms)}): it is how far a client may extend request, so it cannot be shorter`)
  }
  return { request, streamIdle, firstEvent, firstEventFollowsStreamIdle: explicitFirstEvent === undefined, firstByte, firstByteFollowsRequest: explicitFirstByte === undefined, maxClientTimeout, tunnelIdle }
}

function resolveRetry (route: ParsedRoute, path: ConfigPath, report: Report): RetryPolicy {
  const r = route.retry
  const statuses = new Set<number>()
  for (const condition of r.on) if (/^\d+$/.test(condition)) statuses.add(Number(condition))
  if (r.backoff.base > r.backoff.max) report('error', [...path, 'retry', 'backoff', 'base'], `retry.backoff.base (${formatDuration(r.backoff.base)}) is longer than retry.backoff.max (${formatDuration(r.backoff.max)})`)

  // These failures can only be retried while the gate holds the headers: without it, a key that does nothing.
  r.on.forEach((condition, i) => {
    if ((condition === 'error-event' || condition === 'first-event-timeout') && route.sse.holdHeaders === undefined) {
      report('error', [...path, 'retry', 'on', i], `retry.on ${condition} needs sse.holdHeaders: once the response headers went out, a failure cannot be retried`)
    }
  })
  if (r.attempts === 1 && route.retry.on.length > 0 && JSON.stringify(route.retry.on) !== '["connect-failure"]') {
    report('warning', [...path, 'retry', 'attempts'], 'retry.attempts is 1 (no retry): retry.on never applies')
  }
  return Object.freeze({
    attempts: r.attempts,
    onConnectFailure: r.on.includes('connect-failure'),
    onReset: r.on.includes('reset-before-response'),
    onErrorEvent: r.on.includes('error-event'),
    onFirstEventTimeout: r.on.includes('first-event-timeout'),
    onStatus: statuses,
    backoffBaseMs: r.backoff.base,
    backoffMaxMs: r.backoff.max,
    budget: r.budget,
    nonIdempotent: r.nonIdempotent,
    maxBufferedBody: r.maxBufferedBody
  })
}

/** True when every request that `later` matches is already taken by `earlier`. */
function shadows (earlier: RouteConfig, later: RouteConfig): boolean {
  const a = earlier.match
  const b = later.match
  if (!b.pathPrefix.startsWith(a.pathPrefix)) return false
  if (a.methods !== null && (b.methods === null || !b.methods.every((m) => a.methods!.includes(m)))) return false
  if (a.host === null) return true
  if (b.host === null) return false
  if (a.host === b.host) return true
  return a.host.startsWith('*.') && b.host.endsWith(a.host.slice(1))
}

function resolveListener (l: Parsed['listen'][number], i: number, source: RuntimeConfig['source'], report: Report, readFiles: boolean): ListenerConfig {
  const address = splitAddress(l.address)
  if (l.tls !== undefined && l.protocol === 'h2c') {
    report('error', ['listen', i, 'protocol'], 'protocol h2c is cleartext HTTP/2, and a tls listener already serves HTTP/2 (by ALPN): remove one of them')
  }
  if (l.tls === undefined) return { ...address, kind: l.protocol === 'h2c' ? 'h2c' : 'http1', tls: null }
  const files = resolveTlsFiles(source.path, l.tls)
  if (!readFiles) return { ...address, kind: 'tls', tls: Object.freeze(files) }
  try {
    checkTlsFiles(files)
  } catch (err) {
    if (!(err instanceof TlsFileError)) throw err
    report('error', ['listen', i, 'tls', ...(err.which === null ? [] : [err.which])], err.message)
  }
  return { ...address, kind: 'tls', tls: Object.freeze(files) }
}

export function resolveConfig (parsed: Parsed, source: RuntimeConfig['source'], report: Report, { readFiles = true } = {}): RuntimeConfig {
  const listen = parsed.listen.map((l, i) => resolveListener(l, i, source, report, readFiles))
  const admin = splitAddress(parsed.admin.address)
  const seenAddresses = new Map<string, ConfigPath>()
  listen.forEach((l, i) => {
    if (seenAddresses.has(l.address) && l.port !== 0) report('error', ['listen', i, 'address'], `listen address ${l.address} appears twice`)
    seenAddresses.set(l.address, ['listen', i, 'address'])
  })
  if (seenAddresses.has(admin.address) && admin.port !== 0) report('error', ['admin', 'address'], `admin address ${admin.address} is also a listener address`)

  const upstreams: Record<string, UpstreamConfig> = {}
  for (const [name, u] of Object.entries(parsed.upstreams)) {
    const seen = new Set<string>()
    u.endpoints.forEach((e, i) => {
      const normalized = e.startsWith('dns://') ? e.toLowerCase() : new URL(e).origin
      if (seen.has(normalized)) report('error', ['upstreams', name, 'endpoints', i], `endpoint ${e} appears twice`)
      seen.add(normalized)
    })
    upstreams[name] = Object.freeze({
      name,
      endpoints: Object.freeze([...u.endpoints]),
      protocol: u.protocol,
      balance: u.balance,
      connectTimeoutMs: u.connectTimeout,
      idleTimeout: u.idleTimeout,
      maxConnectionsPerEndpoint: u.maxConnectionsPerEndpoint ?? null,
      connectionQueueTimeoutMs: u.limits?.queueTimeout ?? parseDuration(DEFAULT_QUEUE_TIMEOUT) as number,
      tcpKeepAliveMs: u.tcpKeepAlive,
      outlier: Object.freeze({ consecutiveFailures: u.outlier.consecutiveFailures, ejectForMs: u.outlier.ejectFor, maxEjectForMs: Math.max(u.outlier.ejectFor, u.outlier.maxEjectFor) }),
      healthCheck: u.healthCheck === undefined
        ? null
        : Object.freeze({ path: u.healthCheck.path, intervalMs: u.healthCheck.interval, timeoutMs: u.healthCheck.timeout, healthyThreshold: u.healthCheck.healthyThreshold, unhealthyThreshold: u.healthCheck.unhealthyThreshold }),
      limits: u.limits === undefined ? null : Object.freeze({ maxConcurrent: u.limits.maxConcurrent, maxQueued: u.limits.maxQueued, queueTimeoutMs: u.limits.queueTimeout }),
      dns: Object.freeze({ refreshMs: (u.dns ?? DNS_DEFAULTS).refresh, resolver: u.dns?.resolver ?? null })
    })
    if (u.dns !== undefined && !u.endpoints.some((e) => e.startsWith('dns://'))) {
      report('error', ['upstreams', name, 'dns'], 'dns settings apply to dns:// endpoints, and this upstream has none')
    }
    if (u.healthCheck !== undefined && u.healthCheck.timeout >= u.healthCheck.interval) {
      report('warning', ['upstreams', name, 'healthCheck', 'timeout'], `healthCheck.timeout (${formatDuration(u.healthCheck.timeout)}) is not shorter than its interval (${formatDuration(u.healthCheck.interval)}): checks overlap`)
    }
  }

  const used = new Set<string>()
  const names = new Map<string, number>()
  const routes: RouteConfig[] = parsed.routes.map((r, index) => {
    const path: ConfigPath = ['routes', index]
    if (names.has(r.name)) report('error', [...path, 'name'], `route name '${r.name}' is already used by routes[${names.get(r.name)}]`)
    names.set(r.name, index)
    if (upstreams[r.upstream] === undefined) {
      const hint = didYouMean(r.upstream, Object.keys(upstreams))
      report('error', [...path, 'upstream'], `upstream '${r.upstream}' is not defined under upstreams${hint === undefined ? '' : ` (did you mean '${hint}'?)`}`)
    }
    used.add(r.upstream)
    const prefix = r.match.pathPrefix
    const strip = r.rewrite?.stripPrefix ?? null
    if (strip !== null && !prefix.startsWith(strip)) {
      if (strip.startsWith(prefix)) {
        report('warning', [...path, 'rewrite', 'stripPrefix'], `stripPrefix ${strip} is longer than match.pathPrefix ${prefix}: paths matched by the route that do not start with it are forwarded unchanged`)
      } else {
        report('error', [...path, 'rewrite', 'stripPrefix'], `stripPrefix ${strip} is not a prefix of match.pathPrefix ${prefix}: it would never apply`)
      }
    }
    return Object.freeze({
      name: r.name,
      index,
      match: Object.freeze({
        pathPrefix: prefix,
        methods: r.match.methods === undefined ? null : Object.freeze([...new Set(r.match.methods)]),
        host: r.match.host === undefined ? null : r.match.host.toLowerCase()
      }),
      upstream: r.upstream,
      timeouts: Object.freeze(resolveTimeouts(r, parsed, path, report)),
      sse: Object.freeze({ errorEvent: r.sse.errorEvent, heartbeatMs: r.sse.heartbeat ?? null, metrics: r.sse.metrics, holdHeadersMs: r.sse.holdHeaders ?? null }),
      stripPrefix: strip,
      retry: resolveRetry(r, path, report)
    })
  })

  routes.forEach((later, j) => {
    const earlier = routes.slice(0, j).find((candidate) => shadows(candidate, later))
    if (earlier !== undefined) {
      report('warning', ['routes', j], `route '${later.name}' never matches: routes[${earlier.index}] ('${earlier.name}') takes every request it would match`)
    }
  })
  for (const name of Object.keys(upstreams)) {
    if (!used.has(name)) report('warning', ['upstreams', name], `upstream '${name}' is not used by any route`)
  }

  // A heartbeat only runs while the upstream is silent, and streamIdle ends that silence: one that
  // is not shorter never goes out, a key that takes no effect.
  for (const route of routes) {
    const heartbeat = route.sse.heartbeatMs
    const idle = route.timeouts.streamIdle.ms
    if (heartbeat !== null && idle !== null && heartbeat >= idle) {
      report('warning', ['routes', route.index, 'sse', 'heartbeat'], `heartbeat (${formatDuration(heartbeat)}) is not shorter than streamIdle (${formatDuration(idle)}): a silent stream is cut before its first heartbeat`)
    }
  }

  // A drain shorter than a route's request cuts that route's healthy requests at every rollout.
  for (const route of routes) {
    const request = route.timeouts.request.ms
    if (request === null || request > parsed.drain.timeout) {
      report('warning', ['routes', route.index, 'timeouts', 'request'], `drain.timeout (${formatDuration(parsed.drain.timeout)}) is shorter than route '${route.name}' request (${formatDuration(request)}): a shutdown will cut its longest requests as drain_timeout`)
    }
  }

  const d = parsed.downstream
  return Object.freeze({
    source: Object.freeze(source),
    listen: Object.freeze(listen.map((l) => Object.freeze(l))),
    admin: Object.freeze(admin),
    downstream: Object.freeze({
      headersTimeoutMs: d.headersTimeout,
      bodyIdleTimeoutMs: d.bodyIdleTimeout,
      lingerTimeoutMs: d.lingerTimeout,
      idleTimeoutMs: d.idleTimeout,
      sendTimeoutMs: d.sendTimeout,
      maxHeaderSize: d.maxHeaderSize,
      maxHeaderCount: d.maxHeaderCount,
      maxConcurrentStreams: d.maxConcurrentStreams,
      maxBodySize: d.maxBodySize,
      tcpKeepAliveMs: d.tcpKeepAlive,
      resetFlood: Object.freeze({ ...d.resetFlood })
    }),
    upstreams: Object.freeze(upstreams),
    routes: Object.freeze(routes),
    drain: Object.freeze({ delayMs: parsed.drain.delay, timeoutMs: parsed.drain.timeout }),
    log: Object.freeze({ level: parsed.log.level }),
    workers: parsed.workers,
    telemetry: Object.freeze({ otlp: parsed.telemetry.otlp === undefined ? null : Object.freeze({ ...parsed.telemetry.otlp, headers: Object.freeze({ ...parsed.telemetry.otlp.headers }) }) })
  })
}
