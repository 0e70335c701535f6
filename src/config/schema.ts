// The single source of config keys, their meaning and their defaults (DESIGN.md §3).
// A key is here only once the code acts on it: a key accepted but ignored is the silent
// failure longhaul exists to prevent. The JSON Schema for editors is generated from this file.
import { z } from 'zod'
import { parseDuration, parseSize } from './units.ts'
import { didYouMean } from './diagnostics.ts'
import { AUTO_IDLE_MS, DEFAULT_QUEUE_TIMEOUT, ROUTE_TIMEOUTS, ROUTE_TIMEOUT_NAMES, type RouteTimeoutName } from './builtins.ts'

const DURATION_PATTERN = '^\\d+(\\.\\d+)?(ms|s|m|h)$'
const SIZE_PATTERN = '^\\d+(B|KiB|MiB|GiB)$'

function unitString (kind: 'duration' | 'size', example: string, extra: string[] = []) {
  const alternatives = extra.map((word) => `'${word}' or `).join('')
  return z.string({
    error: (issue) => typeof issue.input === 'number'
      ? `a bare number is not a ${kind}: write ${alternatives}a number with a unit, e.g. '${issue.input}${kind === 'duration' ? 's' : 'KiB'}'`
      : `expected a ${kind} such as '${example}'`
  })
}

/** A duration with a unit, parsed to milliseconds. */
export const duration = unitString('duration', '30s')
  .regex(new RegExp(DURATION_PATTERN), { error: (i) => `invalid duration '${String(i.input)}': write a number with a unit (ms, s, m, h), e.g. '30s'` })
  .transform((text) => parseDuration(text) as number)

/** A duration, or `none` for unlimited (null). */
export const durationOrNone = unitString('duration', '30s', ['none'])
  .regex(new RegExp(`^none$|${DURATION_PATTERN}`), { error: (i) => `invalid duration '${String(i.input)}': write 'none' or a number with a unit (ms, s, m, h), e.g. '30s'` })
  .transform((text): number | null => text === 'none' ? null : parseDuration(text) as number)

/** A duration, or `auto` (the server's Keep-Alive hint minus 1 s, else AUTO_IDLE_MS). */
export const durationOrAuto = unitString('duration', '4s', ['auto'])
  .regex(new RegExp(`^auto$|${DURATION_PATTERN}`), { error: (i) => `invalid duration '${String(i.input)}': write 'auto' or a number with a unit (ms, s, m, h), e.g. '4s'` })
  .transform((text): number | 'auto' => text === 'auto' ? 'auto' : parseDuration(text) as number)

/** A size with a unit, parsed to bytes. */
export const size = unitString('size', '16KiB')
  .regex(new RegExp(SIZE_PATTERN), { error: (i) => `invalid size '${String(i.input)}': write a whole number with a unit (B, KiB, MiB, GiB), e.g. '16KiB'` })
  .transform((text) => parseSize(text) as number)

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, { error: 'expected HOST:PORT, e.g. 0.0.0.0:8080 (port 0 picks a free port)' })
  .refine((text) => Number(text.slice(text.lastIndexOf(':') + 1)) <= 65535, { error: 'port must be 0-65535' })

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, { error: 'names use letters, digits, - _ . and start with a letter or digit' })

const endpoint = z.string().refine((text) => {
  try {
    const url = new URL(text)
    if (url.protocol === 'dns:') return /^dns:\/\/[A-Za-z0-9.-]+:\d{1,5}$/.test(text)
    return (url.protocol === 'http:' || url.protocol === 'https:') && (url.pathname === '/' || url.pathname === '') && url.search === '' && !text.endsWith('/')
  } catch { return false }
}, { error: 'expected an endpoint URL such as http://10.0.0.5:8000 (http or https, no path) or dns://name:port' })

/** A share of something, written as a percentage: '20%' → 0.2. */
const percent = z.string({ error: 'expected a percentage such as \'20%\'' })
  .regex(/^\d{1,3}(\.\d+)?%$/, { error: 'expected a percentage such as \'20%\'' })
  .transform((text) => Number(text.slice(0, -1)) / 100)
  .refine((share) => share <= 1, { error: 'a percentage is at most 100%' })

const RETRY_WORDS = ['connect-failure', 'reset-before-response', 'error-event', 'first-event-timeout'] as const
const retryOnMessage = (input: unknown): string => {
  const hint = typeof input === 'string' ? didYouMean(input, RETRY_WORDS) : undefined
  return `unknown retry condition ${JSON.stringify(input)}${hint === undefined ? '' : ` (did you mean '${hint}'?)`}: write connect-failure, reset-before-response, error-event, first-event-timeout or a status code such as "503"`
}
const retryCondition = z.union([
  z.enum(RETRY_WORDS),
  z.int().min(100).max(599).transform(String),
  // The last option is the one whose message a bad string gets.
  z.string().regex(/^[1-5]\d\d$/, { error: (issue) => retryOnMessage(issue.input) })
], { error: (issue) => retryOnMessage(issue.input) })

const timeouts = z.strictObject(Object.fromEntries(ROUTE_TIMEOUT_NAMES.map((name) => {
  const row = ROUTE_TIMEOUTS[name]
  const fallback: string = row.default === 'request' || row.default === 'streamIdle' ? `the ${row.default} limit` : row.default
  return [name, durationOrNone.optional().describe(`${row.meaning} Default: ${fallback}. Outcome ${row.outcome}.`)]
})) as Record<RouteTimeoutName, z.ZodOptional<typeof durationOrNone>>)

const downstream = z.strictObject({
  headersTimeout: duration.prefault('30s').describe('The whole request head must arrive within this (slowloris). Outcome request_headers_timeout.'),
  bodyIdleTimeout: duration.prefault('60s').describe('Max silence between request body chunks while the gateway waits for them. Outcome request_body_timeout.'),
  lingerTimeout: duration.prefault('30s').describe('A response sent before its request body was read (an error, a 404) closes the connection; the rest of the body is read and dropped for at most this long (and no longer than bodyIdleTimeout of silence), so the answer is not lost to a TCP reset (nginx lingering_time).'),
  idleTimeout: duration.prefault('620s').describe('Keep-alive idle time of client connections; above common load balancer idle timeouts (GCLB 600 s).'),
  sendTimeout: duration.prefault('60s').describe('A client that accepts no response bytes this long is cut. Outcome client_send_timeout.'),
  maxHeaderSize: size.prefault('16KiB').describe('Largest request head accepted; larger is answered 431.'),
  maxHeaderCount: z.int().min(1).max(10000).prefault(100).describe('Most header fields in a request head (Envoy\'s default); more is answered 431, never silently cut.'),
  maxConcurrentStreams: z.int().min(1).max(2 ** 31 - 1).prefault(1000).describe('HTTP/2: most streams one client session may have open at once; a stream past it is refused alone with RST_STREAM REFUSED_STREAM (outcome too_many_streams), never the session. Not advertised in SETTINGS_MAX_CONCURRENT_STREAMS (nghttp2 would tear the session down instead); 1000 is what Go\'s client opens when no limit is advertised.'),
  maxBodySize: size.prefault('100MiB').describe('Largest request body accepted. Outcome payload_too_large.'),
  tcpKeepAlive: duration.prefault('30s').describe('TCP keep-alive probes on client sockets start after this much silence, so a dead peer is noticed in minutes, not the ~15 min of TCP retransmission.'),
  resetFlood: z.strictObject({
    rate: z.int().min(1).prefault(200).describe('HTTP/2 streams that clients reset before their response ended (or that the gateway refused past maxConcurrentStreams), per second, across all connections, that the gateway absorbs.'),
    burst: z.int().min(1).prefault(1000).describe('Such resets absorbed at once before the rate applies.'),
    perConnection: z.int().min(1).prefault(50).describe('Past the rate and burst, a connection that reset this many streams within a second gets GOAWAY ENHANCE_YOUR_CALM.')
  }).prefault({}).describe('Rapid reset (CVE-2023-44487) across connections: a gateway-wide bound on streams opened and reset by clients. Metric longhaul_http2_flood_goaways_total.')
})

/** dns:// endpoint settings; resolve.ts reads their defaults here when the block is absent. */
export const dnsSettings = z.strictObject({
  refresh: duration.prefault('5s').describe('How often dns:// endpoints are resolved again.'),
  resolver: z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[0-9.]+):\d{1,5}$/, { error: 'expected IP:PORT of a DNS server, e.g. 127.0.0.1:53' }).optional().describe('DNS server to ask (IP:PORT); the system\'s resolvers when absent.')
})

const upstream = z.strictObject({
  endpoints: z.array(endpoint).min(1, { error: 'an upstream needs at least one endpoint' }).describe('Endpoint URLs, e.g. [http://10.0.0.5:8000].'),
  protocol: z.enum(['http1', 'h2']).prefault('http1').describe('http1: HTTP/1.1 to every endpoint. h2: HTTP/2, by ALPN for https:// endpoints and with prior knowledge (h2c) for http:// ones.'),
  balance: z.enum(['least-request', 'round-robin']).prefault('least-request').describe('least-request: the less busy of two distinct random endpoints (power of two choices); round-robin: in turn.'),
  connectTimeout: duration.prefault('5s').describe('TCP (and TLS) connect to one endpoint. Outcome connect_timeout.'),
  idleTimeout: durationOrAuto.prefault('auto').describe(`Pooled connection idle time: \`auto\` = the server's Keep-Alive: timeout= hint minus 1 s (no reuse when that is 0 or less), else ${AUTO_IDLE_MS / 1000} s.`),
  dns: dnsSettings.optional().describe('Settings of dns:// endpoints (A and AAAA records, re-resolved); only with a dns:// endpoint.'),
  maxConnectionsPerEndpoint: z.int().min(1).max(65535).optional().describe('Cap on open connections to one endpoint; none when absent (HTTP/1.1 holds one connection per request in flight: cap requests with `limits`). A request beyond the cap (with protocol h2: cap × 100 streams) waits in the open: counted in longhaul_upstream_queue_depth and /status, for at most limits.queueTimeout, then overloaded.'),
  outlier: z.strictObject({
    consecutiveFailures: z.int().min(1).prefault(5).describe('Connect failures, resets before a response and 5xx answers in a row that eject an endpoint.'),
    ejectFor: duration.prefault('30s').describe('How long an ejected endpoint gets no new requests; grows with each ejection in a row.'),
    maxEjectFor: duration.prefault('5m').describe('Cap on the growing ejection time.')
  }).prefault({}).describe('Passive outlier ejection, on by default.'),
  healthCheck: z.strictObject({
    path: z.string().regex(/^\//, { error: 'healthCheck.path must start with /' }).describe('GET this path on each endpoint; 2xx and 3xx are healthy.'),
    interval: duration.prefault('5s'),
    timeout: duration.prefault('2s'),
    healthyThreshold: z.int().min(1).prefault(2).describe('Passes in a row that make an unhealthy endpoint healthy again.'),
    unhealthyThreshold: z.int().min(1).prefault(3).describe('Failures in a row that take an endpoint out of rotation.')
  }).optional().describe('Active health checks; none when absent.'),
  limits: z.strictObject({
    maxConcurrent: z.int().min(1).describe('Requests in flight to this upstream at once.'),
    maxQueued: z.int().min(0).prefault(0).describe('Requests that may wait for a slot; more are answered overloaded (503, Retry-After).'),
    queueTimeout: duration.prefault(DEFAULT_QUEUE_TIMEOUT).describe('Longest wait for a slot, or for a connection under maxConnectionsPerEndpoint; then overloaded.')
  }).optional().describe('Admission control; unlimited when absent.'),
  tcpKeepAlive: duration.prefault('30s').describe('TCP keep-alive probes on upstream sockets start after this much silence.')
})

const route = z.strictObject({
  name: name.describe('Route name: used in logs, metrics and /config.'),
  match: z.strictObject({
    pathPrefix: z.string().regex(/^\//, { error: 'pathPrefix must start with /' }).prefault('/').describe('Plain string prefix of the path (like Envoy and Traefik): /v1/chat also matches /v1/chatty.'),
    methods: z.array(z.string().regex(/^[A-Z]+$/, { error: 'methods are upper case, e.g. POST' })).min(1).optional().describe('Methods this route takes; any when absent.'),
    host: z.string().regex(/^(\*\.)?[A-Za-z0-9.-]+$/, { error: 'expected a host name such as api.example.com or *.example.com' }).optional().describe('Host header to match (port ignored, case-insensitive); *.example.com matches sub-domains.')
  }).prefault({}),
  upstream: name.describe('Name of an upstream under `upstreams`.'),
  timeouts: timeouts.optional(),
  sse: z.strictObject({
    errorEvent: z.boolean().prefault(true).describe('Before cutting an event stream, send the error record `event: error` naming the outcome (the SDKs of OpenAI and Anthropic raise it as their API error).'),
    heartbeat: duration.refine((ms) => ms >= 100, { error: 'heartbeat must be at least 100ms' }).optional().describe('While a text/event-stream response is silent this long and at an event boundary, send the comment `: keepalive` downstream, so outer load balancers do not cut it. It does not reset streamIdle. Off when absent.'),
    metrics: z.boolean().prefault(false).describe('Read the events of this route\'s event streams for the token-stream metrics: time to the first event, gaps between events, and the token counts a stream reports (OpenAI usage, Anthropic message_start and message_delta). Off: streams are not parsed for them.'),
    holdHeaders: duration.optional().describe('Hold the response headers of an event stream until its first event that carries an answer, at most this long, so that a failure before it (an in-band error record, a reset, a firstEvent cut) is retried on another endpoint as retry allows, or answered with a status and its outcome instead of a cut 200. When the hold runs out, the headers go out. Off when absent.')
  }).prefault({}),
  retry: z.strictObject({
    attempts: z.int().min(1).max(10).prefault(2).describe('Tries in all, the first included (the access log\'s `attempts` counts the same way).'),
    on: z.array(retryCondition).prefault(['connect-failure']).describe('connect-failure (never reached a backend), reset-before-response, or status codes such as "503"; with sse.holdHeaders also error-event (an in-band error record before the first event) and first-event-timeout.'),
    backoff: z.strictObject({
      base: duration.prefault('25ms'),
      max: duration.prefault('250ms').describe('Also caps a Retry-After the upstream asks for.')
    }).prefault({}).describe('Exponential backoff with full jitter between retries.'),
    budget: percent.prefault('20%').describe('Retries in flight may be at most this share of the upstream\'s active requests (at least 3).'),
    nonIdempotent: z.boolean().prefault(false).describe('Also retry POST and PATCH after they may have reached a backend.'),
    maxBufferedBody: size.prefault('64KiB').describe('A request body up to this size is kept for a retry; larger bodies are streamed and not retried once sent.')
  }).prefault({}).describe('Default: one retry, on another endpoint, after a connect failure only.'),
  rewrite: z.strictObject({
    stripPrefix: z.string().regex(/^\//, { error: 'stripPrefix must start with /' }).describe('Removed from the front of the path before forwarding.')
  }).optional()
})

const WORKERS_ERROR = 'workers: auto, or a whole number of processes from 1 to 1024'

export const configSchema = z.strictObject({
  listen: z.array(z.strictObject({
    address: hostPort.describe('HOST:PORT of a client-facing listener: HTTP/1.1 unless tls or protocol say otherwise.'),
    tls: z.strictObject({
      cert: z.string().min(1).describe('PEM certificate (chain) file, relative to this config file.'),
      key: z.string().min(1).describe('PEM private key file, relative to this config file.')
    }).optional().describe('Serve HTTPS: HTTP/2 and HTTP/1.1 on the same port, chosen by ALPN.'),
    protocol: z.enum(['h2c']).optional().describe('h2c: cleartext HTTP/2 with prior knowledge (no HTTP/1.1 on this listener). Absent: HTTP/1.1, or with tls HTTP/2 and HTTP/1.1 by ALPN.')
  })).min(1, { error: 'at least one listener is needed' }).prefault([{ address: '0.0.0.0:8080' }]),
  admin: z.strictObject({
    address: hostPort.prefault('127.0.0.1:9901').describe('HOST:PORT of the admin listener (/healthz /readyz /config); loopback by default.')
  }).prefault({}),
  downstream: downstream.prefault({}),
  upstreams: z.record(name, upstream).describe('Named groups of endpoints.'),
  defaults: z.strictObject({ timeouts: timeouts.prefault({}) }).prefault({}),
  routes: z.array(route).min(1, { error: 'at least one route is needed' }).describe('Tried in order; the first match wins.'),
  drain: z.strictObject({
    delay: duration.prefault('5s').describe('After SIGTERM, /readyz says 503 and the gateway keeps serving this long, while load balancers take it out of rotation.'),
    timeout: duration.prefault('10m').describe('Then, with new connections refused, in-flight requests get this long to finish; what is left ends as drain_timeout.')
  }).prefault({}),
  log: z.strictObject({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).prefault('info')
  }).prefault({}),
  workers: z.union([z.literal('auto'), z.int({ error: WORKERS_ERROR }).min(1, { error: WORKERS_ERROR }).max(1024, { error: WORKERS_ERROR })], { error: WORKERS_ERROR }).prefault(1)
    .describe('Processes sharing the listeners (node:cluster); the admin listener answers for all of them. auto: one per CPU the process may use (os.availableParallelism(), cgroup limits included). 1: a single process, no primary.'),
  telemetry: z.strictObject({
    otlp: z.strictObject({
      endpoint: z.string().refine((text) => {
        try {
          const url = new URL(text)
          return (url.protocol === 'http:' || url.protocol === 'https:') && url.search === ''
        } catch { return false }
      }, { error: 'expected the OTLP/HTTP base URL of a collector, e.g. http://127.0.0.1:4318 (spans go to /v1/traces under it)' })
        .describe('OTLP/HTTP base URL of an OpenTelemetry collector; spans are posted to ENDPOINT/v1/traces.'),
      serviceName: z.string().min(1).prefault('longhaul').describe('The service.name resource attribute of the spans.'),
      headers: z.record(z.string(), z.string()).prefault({}).describe('Extra HTTP headers sent with each export (e.g. an API key).')
    }).optional().describe('Export a span per request (a child span per attempt, events when a limit is armed and when one fires), batched, with W3C traceparent propagated upstream. Off when absent.')
  }).prefault({}).describe('OpenTelemetry.')
})

export type ConfigInput = z.input<typeof configSchema>
export type ParsedConfig = z.output<typeof configSchema>
export type RouteTimeoutsInput = z.output<typeof timeouts>
