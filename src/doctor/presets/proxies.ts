// Reverse proxies, ingress controllers and meshes. Values and sources: reference/timeout-defaults.md §3.
import { sec } from '../format.ts'
import { proxy, v, type Preset } from './types.ts'

const NGINX_PROXY = 'https://nginx.org/en/docs/http/ngx_http_proxy_module.html'
const NGINX_CORE = 'https://nginx.org/en/docs/http/ngx_http_core_module.html'
const NGINX_UPSTREAM = 'https://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive_timeout'
const INGRESS_NGINX = 'https://github.com/kubernetes/ingress-nginx/blob/dbb11b92ddb77bee9c35e462479129354c84f939'
const INGRESS_CONFIG = `${INGRESS_NGINX}/internal/ingress/controller/config/config.go ; docs/user-guide/nginx-configuration/configmap.md`
const HAPROXY = 'https://github.com/haproxy/haproxy/blob/50872daa6a857e82afc40b1c5161924aef4172d7/doc/configuration.txt (section 4.2 timeout *; 8.5 termination states)'
const ENVOY_FAQ = 'https://www.envoyproxy.io/docs/envoy/latest/faq/configuration/timeouts'
const ENVOY_HCM = 'https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto'
const ISTIO = 'https://github.com/istio/istio/blob/86c9f01fd735fb01d8192f5bcaf0d424afb7f14c'
const TRAEFIK_STATIC = 'https://github.com/traefik/traefik/blob/fd5a576df2e8aeb0bfc8a96b6ef6e60a61f7ec0a/pkg/config/static/static_config.go ; https://doc.traefik.io/traefik/reference/install-configuration/entrypoints/'
const TRAEFIK_DYNAMIC = 'https://github.com/traefik/traefik/blob/fd5a576df2e8aeb0bfc8a96b6ef6e60a61f7ec0a/pkg/config/dynamic/http_config.go (ForwardingTimeouts.SetDefaults)'
const CADDY = 'https://github.com/caddyserver/caddy/blob/0cf03d32f7d99cf160d5375e8a40fbe3d910d515/modules/caddyhttp'

const NGINX_READ = 'before the response headers: 504, with `upstream timed out (110: Connection timed out) while reading response header from upstream` in its log; mid-stream: the response is cut (curl (18) / (92))'
const NGINX_STALE = '502, with `upstream prematurely closed connection while reading response header from upstream` in its log'
const ENVOY_STALE = '503 `upstream connect error or disconnect/reset before headers. reset reason: connection termination` (flag UC)'

export const PROXIES: readonly Preset[] = [
  proxy('nginx', 'NGINX (open source) as a reverse proxy', {
    values: {
      streamIdleTimeout: v(sec(60), 'proxy_read_timeout', NGINX_PROXY, { symptom: NGINX_READ, note: 'a gap between two reads, the wait for the response headers included; not a total' }),
      connectTimeout: v(sec(60), 'proxy_connect_timeout', NGINX_PROXY),
      serverIdleTimeout: v(sec(75), 'keepalive_timeout', NGINX_CORE),
      clientIdleTimeout: v(0, 'upstream keepalive (off: one connection per request)', NGINX_UPSTREAM, { symptom: NGINX_STALE, note: 'with `keepalive N` in the upstream block, connections are pooled for keepalive_timeout (60 s): write set: { clientIdleTimeout: 60s }' }),
      headersTimeout: v(sec(60), 'client_header_timeout', NGINX_CORE, { symptom: '408' })
    },
    other: [
      { setting: 'proxy_send_timeout', ms: sec(60), meaning: 'gap between two writes to the upstream', source: NGINX_PROXY, confirmed: true },
      { setting: 'send_timeout', ms: sec(60), meaning: 'gap between two writes to the client', source: NGINX_CORE, confirmed: true },
      { setting: 'client_body_timeout', ms: sec(60), meaning: 'gap between two reads of the request body (408)', source: NGINX_CORE, confirmed: true }
    ],
    notes: ['Buffers responses by default (proxy_buffering on): an event stream needs `X-Accel-Buffering: no` or proxy_buffering off.']
  }),
  proxy('ingress-nginx', 'ingress-nginx (Kubernetes ingress controller)', {
    values: {
      streamIdleTimeout: v(sec(60), 'proxy-read-timeout (ConfigMap; annotation nginx.ingress.kubernetes.io/proxy-read-timeout)', `${INGRESS_NGINX}/docs/user-guide/nginx-configuration/annotations.md#custom-timeouts`, { symptom: NGINX_READ }),
      connectTimeout: v(sec(5), 'proxy-connect-timeout', INGRESS_CONFIG),
      serverIdleTimeout: v(sec(75), 'keep-alive', INGRESS_CONFIG),
      clientIdleTimeout: v(sec(60), 'upstream-keepalive-timeout', INGRESS_CONFIG, { symptom: NGINX_STALE }),
      headersTimeout: v(sec(60), 'client-header-timeout', INGRESS_CONFIG, { symptom: '408' }),
      drainTimeout: v(sec(240), 'worker-shutdown-timeout', INGRESS_CONFIG, { note: 'old workers keep connections this long after a reload or shutdown, then close them' })
    },
    other: [
      { setting: 'proxy-next-upstream / -tries / -timeout', ms: sec(180), meaning: '"error timeout", 3 tries, no cap: an idempotent request can wait ~3 × proxy-read-timeout before the 504', source: INGRESS_CONFIG, confirmed: true },
      { setting: 'upstream-keepalive-time', ms: sec(3600), meaning: 'max lifetime of a pooled upstream connection', source: INGRESS_CONFIG, confirmed: true },
      { setting: 'chart controller.terminationGracePeriodSeconds', ms: sec(300), meaning: 'the controller pod\'s grace period', source: `${INGRESS_NGINX}/charts/ingress-nginx/values.yaml`, confirmed: true }
    ]
  }),
  proxy('haproxy', 'HAProxy', {
    values: {
      streamIdleTimeout: v(null, 'timeout server', HAPROXY, { symptom: '504 (termination state sH) before the headers; a cut stream (sD) after', note: 'no default: HAProxy warns at startup, and almost everyone sets it' }),
      serverIdleTimeout: v(null, 'timeout http-keep-alive (unset → http-request → client)', HAPROXY),
      connectTimeout: v(null, 'timeout connect', HAPROXY),
      headersTimeout: v(null, 'timeout http-request (unset → timeout client)', HAPROXY, { symptom: '408 (cR)' })
    },
    notes: ['`timeout client` (no default) also cuts a client that reads nothing for that long.']
  }),
  proxy('envoy', 'Envoy (plain defaults; Gloo, Envoy Gateway and kgateway inherit them)', {
    values: {
      requestTimeout: v(sec(15), 'route timeout (RouteAction.timeout)', ENVOY_FAQ, { how: 'route timeout: 0s disables it; bound streams with stream_idle_timeout instead', symptom: '504 `upstream request timeout` (flag UT); once the headers went out, a reset stream', note: 'from the end of the request to the end of the response: a stream needs 0s here and stream_idle_timeout instead' }),
      streamIdleTimeout: v(sec(300), 'HCM stream_idle_timeout', ENVOY_HCM, { symptom: '408 before the response headers, a reset stream after (flag SI)' }),
      serverIdleTimeout: v(sec(3600), 'HCM common_http_protocol_options.idle_timeout', ENVOY_FAQ),
      clientIdleTimeout: v(sec(3600), 'cluster common_http_protocol_options.idle_timeout', ENVOY_FAQ, { symptom: ENVOY_STALE, note: 'ignores the server\'s Keep-Alive: timeout= hint' }),
      connectTimeout: v(sec(5), 'cluster connect_timeout', ENVOY_FAQ, { symptom: '503 `upstream connect error or disconnect/reset before headers` … `connection timeout` (flag UF)' }),
      headersTimeout: v(null, 'HCM request_headers_timeout', ENVOY_FAQ),
      uploadTimeout: v(null, 'HCM request_timeout', ENVOY_HCM, { symptom: 'when set: 408 before the whole request arrived', note: 'the time to receive the entire request; disabled by default' })
    },
    other: [
      { setting: 'HCM drain_timeout', ms: sec(5), meaning: 'grace between GOAWAY / Connection: close and closing, on listener drain', source: ENVOY_HCM, confirmed: true },
      { setting: 'max_stream_duration', ms: null, meaning: 'stream lifetime', source: ENVOY_FAQ, confirmed: true },
      { setting: 'HCM delayed_close_timeout', ms: sec(1), meaning: 'close grace', source: ENVOY_HCM, confirmed: false }
    ],
    notes: ['A plain SIGTERM exits without draining: drain with /healthcheck/fail and /drain_listeners?graceful.']
  }),
  proxy('istio', 'Istio sidecar / gateway (Envoy as Istio configures it)', {
    values: {
      requestTimeout: v(null, 'VirtualService http[].timeout', `${ISTIO}/pilot/pkg/networking/core/route/route.go (setTimeout: action.Timeout = Notimeout)`, { symptom: 'when set: 504 `upstream request timeout`', note: 'Istio forces Envoy\'s 15 s route timeout to 0' }),
      streamIdleTimeout: v(null, 'HCM stream_idle_timeout (Istio sets 0)', `${ISTIO}/pilot/pkg/networking/core/listener_builder.go (StreamIdleTimeout = 0)`),
      connectTimeout: v(sec(10), 'MeshConfig.connectTimeout / DestinationRule connectionPool.tcp.connectTimeout', `${ISTIO}/pkg/config/mesh/mesh.go`, { symptom: '503 (flag UF)' }),
      serverIdleTimeout: v(sec(3600), 'HCM idle_timeout (Envoy default)', ENVOY_FAQ),
      clientIdleTimeout: v(sec(3600), 'DestinationRule connectionPool.http.idleTimeout (unset → Envoy 1 h)', ENVOY_FAQ, { symptom: ENVOY_STALE }),
      drainTimeout: v(sec(5), 'ProxyConfig terminationDrainDuration', `${ISTIO}/pkg/config/mesh/mesh.go`, { symptom: 'the sidecar exits while long requests are still in flight' })
    },
    other: [
      { setting: 'gateway EDGE profile (opt-in, 2026): HttpRequestTimeout / HttpStreamIdleTimeout / HttpRequestHeadersTimeout', ms: sec(300), meaning: '300 s / 300 s / 60 s when the profile is chosen', source: `${ISTIO}/pilot/pkg/networking/core/connection_settings.go (applyEdgeProfileDefaults)`, confirmed: true }
    ]
  }),
  proxy('traefik', 'Traefik v3 (v2.11.2+)', {
    values: {
      writeTimeout: v(null, 'entryPoints.<name>.transport.respondingTimeouts.writeTimeout', TRAEFIK_STATIC),
      serverIdleTimeout: v(sec(180), 'respondingTimeouts.idleTimeout', TRAEFIK_STATIC),
      uploadTimeout: v(sec(60), 'respondingTimeouts.readTimeout', TRAEFIK_STATIC, { note: 'reading the whole request, body included (since v2.11.2)' }),
      connectTimeout: v(sec(30), 'serversTransport forwardingTimeouts.dialTimeout', TRAEFIK_DYNAMIC, { symptom: '502' }),
      firstByteTimeout: v(null, 'forwardingTimeouts.responseHeaderTimeout', TRAEFIK_DYNAMIC),
      clientIdleTimeout: v(sec(90), 'forwardingTimeouts.idleConnTimeout', TRAEFIK_DYNAMIC),
      drainTimeout: v(sec(10), 'lifeCycle.graceTimeOut', TRAEFIK_STATIC)
    },
    other: [
      { setting: 'forwardingTimeouts.pingTimeout', ms: sec(15), meaning: 'HTTP/2 PING health check', source: TRAEFIK_DYNAMIC, confirmed: true }
    ],
    pitfalls: {
      httpRouteTimeout: {
        meant: 'requestTimeout',
        what: 'Traefik accepts Gateway API HTTPRoute `rules[].timeouts` and ignores them',
        works: 'entry point respondingTimeouts and serversTransport forwardingTimeouts (set: { writeTimeout, firstByteTimeout })',
        source: 'https://github.com/traefik/traefik/issues/11902 (open, 2025-07: "these values are accepted but ignored")',
        confirmed: true
      }
    }
  }),
  proxy('caddy', 'Caddy v2.11 reverse_proxy', {
    values: {
      serverIdleTimeout: v(sec(300), 'servers.idle_timeout', `${CADDY}/app.go ; https://caddyserver.com/docs/caddyfile/options#timeouts`),
      headersTimeout: v(sec(60), 'servers.read_header_timeout', `${CADDY}/app.go`),
      writeTimeout: v(null, 'servers.write_timeout', `${CADDY}/server.go`),
      connectTimeout: v(sec(3), 'reverse_proxy transport http dial_timeout', `${CADDY}/reverseproxy/httptransport.go`, { symptom: '502' }),
      clientIdleTimeout: v(sec(120), 'reverse_proxy transport http keep_alive.idle_timeout (Caddyfile: keepalive)', `${CADDY}/reverseproxy/httptransport.go`),
      firstByteTimeout: v(null, 'reverse_proxy transport http response_header_timeout', `${CADDY}/reverseproxy/httptransport.go`),
      streamIdleTimeout: v(null, 'reverse_proxy transport http read_timeout', `${CADDY}/reverseproxy/httptransport.go`)
    },
    notes: ['Caddy main (unreleased, Aug 2026) adds servers.read_idle_timeout / write_idle_timeout of 1 m.']
  })
]
