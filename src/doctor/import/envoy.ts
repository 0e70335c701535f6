// An Envoy bootstrap (YAML or JSON) or an admin /config_dump: the HTTP connection manager's
// stream idle, idle, request and request-headers timeouts, the route the request takes (its
// timeout and idle_timeout), and that route's cluster (connect_timeout, upstream idle_timeout).
// Fields as the v3 API names them; durations in protobuf JSON form (`15s`, `0.5s`, `0s` = off).
import { LineCounter, parseDocument } from 'yaml'
import { Locator } from '../../config/locate.ts'
import { ImportError, type Imported, type ImportedValue } from './types.ts'
import type { Property } from '../properties.ts'

type Path = Array<string | number>

export function isEnvoyConfig (text: string): boolean {
  return /static_resources|http_connection_manager|HttpConnectionManager|"?configs"?\s*:/.test(text) && /(stream_idle_timeout|route_config|virtual_hosts|clusters|connect_timeout)/.test(text)
}

/** A protobuf duration (`15s`, `0.25s`, or `{ seconds, nanos }`) in ms; 0 (off) as null. */
function protoDuration (value: unknown): number | null | undefined {
  let ms: number | undefined
  if (typeof value === 'string' && /^\d+(\.\d+)?s$/.test(value)) ms = Math.round(Number(value.slice(0, -1)) * 1000)
  else if (typeof value === 'object' && value !== null && 'seconds' in value) ms = Number((value as { seconds: unknown }).seconds) * 1000 + Math.round(Number((value as { nanos?: unknown }).nanos ?? 0) / 1e6)
  if (ms === undefined || !Number.isFinite(ms)) return undefined
  return ms === 0 ? null : ms
}

/** Every object in the tree with its path. */
function * objects (node: unknown, path: Path = []): Generator<{ value: Record<string, any>, path: Path }> {
  if (Array.isArray(node)) { for (const [i, item] of node.entries()) yield * objects(item, [...path, i]); return }
  if (typeof node !== 'object' || node === null) return
  yield { value: node as Record<string, any>, path }
  for (const [k, v] of Object.entries(node)) yield * objects(v, [...path, k])
}

export function importEnvoy (text: string, file: string, options: { path?: string } = {}): Imported {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false })
  if (doc.errors.length > 0) throw new ImportError(`${file}:${lines.linePos(doc.errors[0]!.pos[0]).line}`, doc.errors[0]!.message.split('\n')[0]!)
  const locator = new Locator(doc, lines)
  const root: unknown = doc.toJS()
  const values: Partial<Record<Property, ImportedValue>> = {}
  const put = (property: Property, raw: unknown, path: Path, setting: string): void => {
    const ms = protoDuration(raw)
    if (ms !== undefined) values[property] = { ms, setting: `${setting}: ${typeof raw === 'string' ? raw : JSON.stringify(raw)}`, where: `${file}:${locator.at(path).line}` }
  }
  const all = [...objects(root)]
  const hcm = all.find((o) => o.value.route_config !== undefined || o.value.rds !== undefined || o.value.stream_idle_timeout !== undefined || String(o.value['@type'] ?? '').endsWith('HttpConnectionManager'))
  if (hcm === undefined) throw new ImportError(file, 'no HTTP connection manager found')
  const h = hcm.value
  put('streamIdleTimeout', h.stream_idle_timeout, [...hcm.path, 'stream_idle_timeout'], 'HCM stream_idle_timeout')
  put('serverIdleTimeout', h.common_http_protocol_options?.idle_timeout, [...hcm.path, 'common_http_protocol_options', 'idle_timeout'], 'HCM common_http_protocol_options.idle_timeout')
  put('uploadTimeout', h.request_timeout, [...hcm.path, 'request_timeout'], 'HCM request_timeout')
  put('headersTimeout', h.request_headers_timeout, [...hcm.path, 'request_headers_timeout'], 'HCM request_headers_timeout')
  // The route the request takes: the first whose prefix or path matches it.
  const requestPath = options.path ?? '/'
  const route = all.find((o) => o.value.match !== undefined && o.value.route?.cluster !== undefined &&
    ((typeof o.value.match.prefix === 'string' && requestPath.startsWith(o.value.match.prefix)) || o.value.match.path === requestPath))
  let cluster: string | undefined
  if (route !== undefined) {
    const r = route.value.route
    cluster = r.cluster
    const where = `${file}:${locator.at([...route.path, 'route']).line}`
    // An unset route timeout is Envoy's 15 s default; say where the route is.
    if (r.timeout === undefined) values.requestTimeout = { ms: 15_000, setting: `route ${JSON.stringify(route.value.match)} → ${r.cluster}: timeout unset (default 15s)`, where }
    else put('requestTimeout', r.timeout, [...route.path, 'route', 'timeout'], `route ${JSON.stringify(route.value.match)} timeout`)
    put('streamIdleTimeout', r.idle_timeout, [...route.path, 'route', 'idle_timeout'], `route ${JSON.stringify(route.value.match)} idle_timeout`)
  }
  const c = all.find((o) => o.value.name === cluster && o.value.connect_timeout !== undefined) ?? all.find((o) => o.value.connect_timeout !== undefined && (o.value.load_assignment !== undefined || o.value.type !== undefined))
  if (c !== undefined) {
    put('connectTimeout', c.value.connect_timeout, [...c.path, 'connect_timeout'], `cluster ${String(c.value.name)} connect_timeout`)
    const options = c.value.typed_extension_protocol_options?.['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']
    if (c.value.common_http_protocol_options?.idle_timeout !== undefined) put('clientIdleTimeout', c.value.common_http_protocol_options.idle_timeout, [...c.path, 'common_http_protocol_options', 'idle_timeout'], `cluster ${String(c.value.name)} common_http_protocol_options.idle_timeout`)
    else if (options?.common_http_protocol_options?.idle_timeout !== undefined) put('clientIdleTimeout', options.common_http_protocol_options.idle_timeout, [...c.path, 'typed_extension_protocol_options', 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions', 'common_http_protocol_options', 'idle_timeout'], `cluster ${String(c.value.name)} HttpProtocolOptions idle_timeout`)
  }
  return { hops: [{ name: 'envoy', preset: 'envoy', values, ignored: [], where: `${file}:${locator.at(hcm.path).line}` }], deploy: null }
}
