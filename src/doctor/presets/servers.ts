// App servers: where a request ends. Values and sources: reference/timeout-defaults.md §2.
import { sec } from '../format.ts'
import { server, v, type Preset } from './types.ts'

const NODE_HTTP = 'https://github.com/nodejs/node/blob/0012a77503d5116c03ae75e0dc92a36975e58b5a/lib/_http_server.js (storeHTTPOptions, Server) ; https://nodejs.org/api/http.html'
const GO_SERVER = 'https://pkg.go.dev/net/http#Server'
const GUNICORN = 'https://github.com/benoitc/gunicorn/blob/65ac1a3a4c0aa00960968c720d6e6bd2ac32f1b9/gunicorn/config.py ; https://docs.gunicorn.org/en/stable/settings.html'
const UVICORN = 'https://github.com/encode/uvicorn/blob/e6c7ce791fc634b6eedee40e0d0207faa8a9aefd/uvicorn/config.py ; https://www.uvicorn.org/settings/#timeouts'
const HYPERCORN = 'https://github.com/pgjones/hypercorn/blob/main/src/hypercorn/config.py (keep_alive_timeout = 5 * SECONDS, graceful_timeout = 3 * SECONDS, read_timeout = None)'
const TOMCAT = 'https://github.com/apache/tomcat/blob/84ac9af072d4c43ebb44ccc0ceba405ad0a84903/webapps/docs/config/http.xml ; java/org/apache/coyote/http11/Constants.java ; conf/server.xml'
const BOOT = 'https://github.com/spring-projects/spring-boot/blob/c329ffa25dc160a90ebe5e4b006ad4cdf89d8683'
const BOOT_TOMCAT = `${BOOT}/module/spring-boot-tomcat/src/main/java/org/springframework/boot/tomcat/autoconfigure/TomcatServerProperties.java`
const BOOT_MVC = `${BOOT}/module/spring-boot-webmvc/src/main/java/org/springframework/boot/webmvc/autoconfigure/WebMvcProperties.java`
const BOOT_LIFECYCLE = `${BOOT}/core/spring-boot-autoconfigure/src/main/java/org/springframework/boot/autoconfigure/context/LifecycleProperties.java`

/** What a proxy in front sees when the app closed a kept-alive connection first. */
const STALE_REUSE = 'the proxy in front reuses a connection the app already closed: nginx logs `upstream prematurely closed connection while reading response header from upstream` (502), an ALB answers 502, Envoy 503 `upstream connect error or disconnect/reset before headers. reset reason: connection termination`'

/** The servlet async timeout applies to async requests only: a synchronous endpoint has no limit of its own. */
const SERVLET_MODES: Preset['modes'] = {
  sync: { description: 'a synchronous endpoint (the default for a response that comes at the end): no request limit', values: { requestTimeout: null } },
  async: { description: 'an async request (SseEmitter, DeferredResult, StreamingResponseBody; the default for a streaming workload): the async timeout bounds it' }
}

export const SERVERS: readonly Preset[] = [
  server('node-http-server', 'Node.js http.Server, Node 24 LTS (Express serves on it unchanged)', {
    values: {
      serverIdleTimeout: v(sec(5), 'server.keepAliveTimeout', 'https://nodejs.org/api/http.html#serverkeepalivetimeout (Default: 5000 in v8-v25)', { symptom: STALE_REUSE, note: 'Node 24 (5 s since v8); Node 26 raises it to 65 s (nodejs/node#62782). Since 24.6 the socket closes keepAliveTimeoutBuffer (1 s) after the advertised Keep-Alive: timeout' }),
      headersTimeout: v(sec(60), 'server.headersTimeout', NODE_HTTP, { symptom: '408 Request Timeout', note: 'min(60 s, requestTimeout); checked every connectionsCheckingInterval (30 s), so it can fire up to 30 s late' }),
      streamIdleTimeout: v(null, 'server.timeout (socket inactivity; 0 = none since v13)', NODE_HTTP),
      uploadTimeout: v(sec(300), 'server.requestTimeout', NODE_HTTP, { symptom: '408 Request Timeout: a slow upload is cut', note: 'receiving the whole request, not the handler or the response; checked every connectionsCheckingInterval (30 s)' })
    },
    other: [
      { setting: 'connectionsCheckingInterval', ms: sec(30), meaning: 'granularity of headersTimeout and requestTimeout', source: NODE_HTTP, confirmed: true }
    ]
  }),
  server('go-http-server', 'Go net/http Server', {
    values: {
      writeTimeout: v(null, 'Server.WriteTimeout', GO_SERVER, { symptom: 'the handler runs to the end, then its writes fail: the client gets an empty reply or a truncated response' }),
      serverIdleTimeout: v(null, 'Server.IdleTimeout (0 → ReadTimeout → none)', GO_SERVER),
      headersTimeout: v(null, 'Server.ReadHeaderTimeout (0 → ReadTimeout → none)', GO_SERVER),
      uploadTimeout: v(null, 'Server.ReadTimeout', GO_SERVER, { symptom: 'when set: the connection is closed while the body still arrives', note: 'reading the whole request, body included' })
    },

    notes: ['A limit that answers at once is http.TimeoutHandler; a request context the handler checks stops the work when nobody waits.']
  }),
  server('gunicorn', 'gunicorn', {
    values: {
      requestTimeout: v(sec(30), 'timeout (--timeout)', GUNICORN, { symptom: 'the worker is killed (`WORKER TIMEOUT` in the gunicorn log) and the proxy in front answers 502', note: 'a per-request limit for sync workers only. 0 disables it' }),
      serverIdleTimeout: v(sec(2), 'keepalive (--keep-alive)', GUNICORN, { symptom: STALE_REUSE }),
      drainTimeout: v(sec(30), 'graceful_timeout (--graceful-timeout)', GUNICORN, { symptom: 'in-flight requests are killed after it' })
    },
    defaultMode: 'sync',
    modes: {
      sync: {
        description: 'worker_class sync (the default): one request per worker; --timeout bounds each request',
        values: { serverIdleTimeout: null },
        notes: ['Sync workers answer with Connection: close and keep no connection alive: no idle race with the proxy in front.']
      },
      gthread: {
        description: 'worker_class gthread (also sync with --threads above 1): requests run in threads; --timeout is a heartbeat of the worker, not a limit on a request',
        values: { requestTimeout: null }
      },
      async: {
        description: 'worker_class gevent, eventlet or tornado: --timeout is a heartbeat of the worker, not a limit on a request',
        values: { requestTimeout: null }
      },
      'uvicorn-worker': {
        description: 'worker_class uvicorn.workers.UvicornWorker (ASGI): --timeout is a heartbeat of the worker; --keep-alive becomes uvicorn\'s timeout_keep_alive',
        values: { requestTimeout: null }
      }
    },
    notes: ['--timeout: "For the non sync workers it just means that the worker process is still communicating and is not tied to the length of time required to handle a single request" (gunicorn settings).']
  }),
  server('hypercorn', 'Hypercorn (ASGI)', {
    values: {
      serverIdleTimeout: v(sec(5), 'keep_alive_timeout (--keep-alive)', HYPERCORN, { symptom: STALE_REUSE }),
      drainTimeout: v(sec(3), 'graceful_timeout (--graceful-timeout)', HYPERCORN, { symptom: 'in-flight requests are cancelled after it' }),
      streamIdleTimeout: v(null, 'read_timeout (--read-timeout)', HYPERCORN, { note: 'seconds to wait before timing out reads; unset: none' })
    }
  }),
  server('uvicorn', 'uvicorn', {
    values: {
      serverIdleTimeout: v(sec(5), 'timeout_keep_alive (--timeout-keep-alive)', UVICORN, { symptom: STALE_REUSE }),
      drainTimeout: v(null, 'timeout_graceful_shutdown (--timeout-graceful-shutdown)', UVICORN, { note: 'unset: waits for in-flight requests until SIGKILL' })
    }
  }),
  server('tomcat', 'Apache Tomcat (code defaults, as embedded)', {
    values: {
      headersTimeout: v(sec(60), 'Connector connectionTimeout', TOMCAT, { note: 'the shipped conf/server.xml sets 20 s' }),
      serverIdleTimeout: v(sec(60), 'Connector keepAliveTimeout (= connectionTimeout)', TOMCAT, { symptom: STALE_REUSE }),
      requestTimeout: v(sec(30), 'Connector asyncTimeout', TOMCAT, { symptom: 'the async request times out (SSE and DeferredResult)', note: 'async requests only (SSE, DeferredResult)' })
    },
    defaultMode: 'sync',
    streamingMode: 'async',
    modes: SERVLET_MODES
  }),
  server('spring-boot', 'Spring Boot (embedded Tomcat, Spring MVC)', {
    values: {
      headersTimeout: v(sec(60), 'server.tomcat.connection-timeout', BOOT_TOMCAT),
      serverIdleTimeout: v(sec(60), 'server.tomcat.keep-alive-timeout', BOOT_TOMCAT, { symptom: STALE_REUSE }),
      requestTimeout: v(sec(30), 'spring.mvc.async.request-timeout (unset → Tomcat asyncTimeout)', BOOT_MVC, { symptom: '`AsyncRequestTimeoutException` (503 by default)', note: 'async requests only (SseEmitter, DeferredResult, StreamingResponseBody); the 503 mapping was not re-read' }),
      drainTimeout: v(sec(30), 'spring.lifecycle.timeout-per-shutdown-phase (server.shutdown=graceful)', BOOT_LIFECYCLE)
    },
    defaultMode: 'sync',
    streamingMode: 'async',
    modes: SERVLET_MODES
  })
]
