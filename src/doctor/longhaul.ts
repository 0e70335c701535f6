// A longhaul hop in the doctor's vocabulary, read from a RuntimeConfig: the route's timeouts, the
// downstream and upstream idle timers, the drain. The `longhaul` preset is the same mapping applied
// to a config that sets nothing, so its values come from the schema's defaults and cannot drift.
import { parseConfigText } from '../config/load.ts'
import type { RouteConfig, RuntimeConfig } from '../config/runtime.ts'
import { AUTO_IDLE_MS, ROUTE_TIMEOUTS } from '../config/builtins.ts'
import type { Property } from './properties.ts'

export interface ConfigValue {
  readonly ms: number | null
  readonly setting: string
  readonly symptom?: string
  readonly note?: string
}

/** `auto` follows the server's Keep-Alive hint; the doctor cannot know it, so it uses the no-hint value. */
export const AUTO_IDLE_NOTE = `idleTimeout: auto = the server's Keep-Alive: timeout= hint minus 1 s; ${AUTO_IDLE_MS / 1000} s when it sends none (the doctor assumes none)`

/** routes[].sse.heartbeat arrives in a parallel change; read it when this config has it. */
function heartbeatMs (route: RouteConfig): number | null {
  const value: unknown = Reflect.get(route.sse, 'heartbeatMs')
  return typeof value === 'number' ? value : null
}

export function longhaulValues (config: RuntimeConfig, route: RouteConfig): Partial<Record<Property, ConfigValue>> {
  const t = route.timeouts
  const r = `routes[${route.index}] (${route.name})`
  const upstream = config.upstreams[route.upstream]
  const u = `upstreams.${route.upstream}`
  const values: Partial<Record<Property, ConfigValue>> = {
    requestTimeout: { ms: t.request.ms, setting: `${r}.timeouts.request [${t.request.source}]`, symptom: `504 \`${ROUTE_TIMEOUTS.request.outcome}\`; after the headers, an \`event: error\` record, then a reset` },
    firstByteTimeout: { ms: t.firstByte.ms, setting: `${r}.timeouts.firstByte [${t.firstByteFollowsRequest ? '= request' : t.firstByte.source}]`, symptom: `504 \`${ROUTE_TIMEOUTS.firstByte.outcome}\`` },
    streamIdleTimeout: { ms: t.streamIdle.ms, setting: `${r}.timeouts.streamIdle [${t.streamIdle.source}]`, symptom: `\`${ROUTE_TIMEOUTS.streamIdle.outcome}\`: an \`event: error\` record, then a reset` },
    writeTimeout: { ms: null, setting: 'none (downstream.sendTimeout bounds only a client that reads nothing)' },
    serverIdleTimeout: { ms: config.downstream.idleTimeoutMs, setting: 'downstream.idleTimeout' },
    headersTimeout: { ms: config.downstream.headersTimeoutMs, setting: 'downstream.headersTimeout', symptom: '408 `request_headers_timeout`' },
    drainDelay: { ms: config.drain.delayMs, setting: 'drain.delay' },
    drainTimeout: { ms: config.drain.timeoutMs, setting: 'drain.timeout', symptom: '`drain_timeout` (503, or a reset stream)' }
  }
  if (upstream !== undefined) {
    values.connectTimeout = { ms: upstream.connectTimeoutMs, setting: `${u}.connectTimeout`, symptom: '503 `connect_timeout`' }
    values.clientIdleTimeout = upstream.idleTimeout === 'auto'
      ? { ms: AUTO_IDLE_MS, setting: `${u}.idleTimeout: auto`, note: AUTO_IDLE_NOTE, symptom: 'a request that fails on a reused connection before any response byte is retried on a fresh one (idempotent methods); else 502 `upstream_reset`' }
      : { ms: upstream.idleTimeout, setting: `${u}.idleTimeout`, symptom: '502 `upstream_reset` when not retried' }
  }
  const heartbeat = heartbeatMs(route)
  if (heartbeat !== null) values.heartbeat = { ms: heartbeat, setting: `${r}.sse.heartbeat` }
  return values
}

const DEFAULTS_YAML = `upstreams:
  app: { endpoints: ['http://127.0.0.1:8000'] }
routes:
  - { name: default, upstream: app }
`

/** longhaul's defaults, through the real loader: a config that sets nothing. */
export function longhaulDefaults (): Partial<Record<Property, ConfigValue>> {
  const { config } = parseConfigText(DEFAULTS_YAML, '<longhaul defaults>')
  const values = longhaulValues(config, config.routes[0]!)
  // In the preset, name the keys generically: no route or upstream is called `default` or `app`.
  const generic: Partial<Record<Property, ConfigValue>> = {}
  for (const [property, value] of Object.entries(values) as Array<[Property, ConfigValue]>) {
    generic[property] = { ...value, setting: value.setting.replace('routes[0] (default)', 'routes[]').replace('upstreams.app', 'upstreams.<name>').replace(/ \[default\]$/, '') }
  }
  return generic
}
