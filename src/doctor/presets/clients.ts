// HTTP clients: where a request starts. Values and sources: reference/timeout-defaults.md §1.
import { sec } from '../format.ts'
import { client, v, type Preset } from './types.ts'

const CURL = 'https://github.com/curl/curl/blob/5c61e168698a72b87437d58ed728bcdea6d5db42/docs/libcurl/opts'
const REQUESTS = 'https://github.com/psf/requests/blob/1f6589ec3a1ee910f9a65cc3ceac60b26677bc0e/docs/user/advanced.rst#timeouts'
const HTTPX = 'https://github.com/encode/httpx/blob/ae1b9f66238f75ced3ced5e4485408435de10768/httpx/_config.py (DEFAULT_TIMEOUT_CONFIG, Limits)'
const GO_CLIENT = 'https://github.com/golang/go/blob/master/src/net/http/client.go (Client.Timeout: "A Timeout of zero means no timeout")'
const GO_TRANSPORT = 'https://github.com/golang/go/blob/master/src/net/http/transport.go (var DefaultTransport)'
const UNDICI = 'https://github.com/nodejs/undici/blob/7eb7c8ec8f23acd9c3da93a286162f8c1dc68326/docs/docs/api/Client.md ; lib/dispatcher/client.js'
const AXIOS = 'https://github.com/axios/axios/blob/23a25af0688d1db2c396deb09229d2271cc24f6c/lib/defaults/index.js'
const OKHTTP = 'https://github.com/square/okhttp/blob/1682d9bac8c03dffde2969b0b74d47649d0dbb52/okhttp/src/commonJvmAndroid/kotlin/okhttp3'
const JAVA_REQUEST = 'https://docs.oracle.com/en/java/javase/17/docs/api/java.net.http/java/net/http/HttpRequest.Builder.html#timeout(java.time.Duration)'
const JAVA_CONNECT = 'https://docs.oracle.com/en/java/javase/17/docs/api/java.net.http/java/net/http/HttpClient.Builder.html#connectTimeout(java.time.Duration) ; https://bugs.openjdk.org/browse/JDK-8209075 (CSR: the connect timeout applies "if specified")'
const JAVA_POOL = 'OpenJDK 17 jdk.internal.net.http.ConnectionPool (javap: getIntegerNetProperty("jdk.httpclient.keepalive.timeout", 1200))'
const CHROMIUM_POOL = 'Chromium net/socket/client_socket_pool_base.h (kUsedIdleSocketTimeout = 300, kUnusedIdleSocketTimeout = 10; older snapshot)'

const OPENAI_PY = 'https://github.com/openai/openai-python/blob/main/src/openai/_constants.py (DEFAULT_TIMEOUT = httpx.Timeout(timeout=600.0, connect=5.0), DEFAULT_MAX_RETRIES = 2)'
const ANTHROPIC_PY = 'https://github.com/anthropics/anthropic-sdk-python/blob/main/src/anthropic/_constants.py (DEFAULT_TIMEOUT = httpx.Timeout(timeout=10 * 60, connect=5.0), DEFAULT_MAX_RETRIES = 2)'
const STAINLESS_RETRY = 'the SDKs\' _base_client.py _should_retry (x-should-retry, then 408, 409, 429 and 5xx; connection errors and timeouts) — not re-read'
const CHROMIUM_RESEND = 'Chromium net/http/http_network_transaction.cc (HttpNetworkTransaction::HandleIOError → ShouldResendRequest: a request on a reused keep-alive socket that fails before any response byte is sent again on a new connection)'

/** The official OpenAI and Anthropic SDKs (Stainless-generated): the same timeout, retries and modes. */
function sdkPreset (name: string, vendor: string, pythonSource: string, streamCut: string): Preset {
  return client(name, `${vendor} official SDK (Python on httpx; mode node: TypeScript on fetch)`, {
    values: {
      streamIdleTimeout: v(sec(600), 'timeout (httpx read: a gap between bytes, the wait for the headers included)', pythonSource, { symptom: '`APITimeoutError: Request timed out.`, after 3 attempts' }),
      connectTimeout: v(sec(5), 'timeout connect', pythonSource, { symptom: '`APIConnectionError: Connection error.`' }),
      clientIdleTimeout: v(sec(5), 'httpx Limits keepalive_expiry', HTTPX)
    },
    defaultMode: 'python',
    modes: {
      python: { description: 'the Python SDK: httpx with a 600 s read timeout' },
      node: {
        description: 'the TypeScript SDK on Node: its 600 s timeout ends at the response headers; Node\'s fetch (undici) bounds the headers and every gap at 300 s',
        values: {
          streamIdleTimeout: v(sec(300), 'fetch bodyTimeout (undici)', UNDICI, { confirmed: false, symptom: '`APIConnectionError` (cause `TypeError: terminated`, `UND_ERR_BODY_TIMEOUT`)', note: 'the SDK passes no dispatcher of its own: the global fetch\'s limits apply (not re-read)' }),
          firstByteTimeout: v(sec(300), 'fetch headersTimeout (undici; the SDK\'s timeout is 600 s)', UNDICI, { confirmed: false, symptom: '`APIConnectionError` (cause `UND_ERR_HEADERS_TIMEOUT`)' }),
          clientIdleTimeout: v(sec(4), 'fetch keepAliveTimeout (undici)', UNDICI)
        }
      }
    },
    retries: { count: 2, on: [408, 409, 429, 500, 502, 503, 504, 'timeout', 'reset'], source: STAINLESS_RETRY },
    sees: { streamCut, reset: '`APIConnectionError: Connection error.` (retried twice first)' },
    notes: ['Sends X-Stainless-Timeout (its timeout in seconds) and X-Stainless-Retry-Count on every request; longhaul takes X-Stainless-Timeout as the client\'s wait for the response headers (the SDKs\' own timers end there).']
  })
}

const HTTPX_CUT = '`httpx.RemoteProtocolError: peer closed connection without sending complete message body (incomplete chunked read)` while reading the stream (Python; a stream cut after its headers is not retried)'
const PYTHON_RESET = '`ConnectionError: (\'Connection aborted.\', …)` with `Connection reset by peer` or `Broken pipe`'

export const CLIENTS: readonly Preset[] = [
  client('curl', 'curl (CLI and libcurl)', {
    values: {
      requestTimeout: v(null, '--max-time / CURLOPT_TIMEOUT', `${CURL}/CURLOPT_TIMEOUT.md`, { symptom: 'when set: `curl: (28) Operation timed out`' }),
      connectTimeout: v(sec(300), '--connect-timeout / CURLOPT_CONNECTTIMEOUT', `${CURL}/CURLOPT_CONNECTTIMEOUT.md (lib/connect.h DEFAULT_CONNECT_TIMEOUT 300000)`),
      clientIdleTimeout: v(sec(118), 'CURLOPT_MAXAGE_CONN', `${CURL}/CURLOPT_MAXAGE_CONN.md`, { note: 'libcurl reuses a pooled connection only while it is younger than this; the CLI makes one transfer per run' })
    },
    sees: {
      streamCut: '`curl: (92) HTTP/2 stream 1 was not closed cleanly: INTERNAL_ERROR (err 2)` (HTTP/2) or `curl: (18) transfer closed with outstanding read data remaining` (HTTP/1.1)',
      emptyReply: '`curl: (52) Empty reply from server`',
      reset: '`curl: (56) Recv failure: Connection reset by peer`'
    }
  }),
  client('python-requests', 'Python requests', {
    values: {
      requestTimeout: v(null, 'timeout= (no total timeout exists)', REQUESTS, { symptom: 'hangs until another hop gives up' }),
      streamIdleTimeout: v(null, 'timeout=(connect, read): read', REQUESTS, { symptom: 'when set: `ReadTimeout` (a gap between bytes, not a total)' }),
      connectTimeout: v(null, 'timeout=(connect, read): connect', REQUESTS, { symptom: 'when set: `ConnectTimeout`' })
    },
    sees: {
      emptyReply: '`ConnectionError: (\'Connection aborted.\', BadStatusLine("\'\'",))`',
      reset: PYTHON_RESET
    }
  }),
  client('httpx', 'Python httpx', {
    values: {
      connectTimeout: v(sec(5), 'Timeout.connect', HTTPX, { symptom: '`httpx.ConnectTimeout`' }),
      streamIdleTimeout: v(sec(5), 'Timeout.read', HTTPX, { symptom: '`httpx.ReadTimeout`', note: 'a gap between bytes, the wait for the response headers included: LLM calls and streams with pauses over 5 s fail' }),
      clientIdleTimeout: v(sec(5), 'Limits.keepalive_expiry', HTTPX)
    },
    sees: {
      streamCut: '`RemoteProtocolError: peer closed connection without sending complete message body`',
      reset: PYTHON_RESET
    }
  }),
  client('go-http-client', 'Go net/http Client on http.DefaultTransport', {
    values: {
      requestTimeout: v(null, 'Client.Timeout', GO_CLIENT, { symptom: 'when set: `Client.Timeout exceeded while awaiting headers`' }),
      firstByteTimeout: v(null, 'Transport.ResponseHeaderTimeout', GO_TRANSPORT),
      connectTimeout: v(sec(30), 'net.Dialer{Timeout}', GO_TRANSPORT, { symptom: '`i/o timeout`' }),
      clientIdleTimeout: v(sec(90), 'Transport.IdleConnTimeout', GO_TRANSPORT, { symptom: '`EOF` on a reused connection (retried only for idempotent requests)' })
    },
    sees: {
      streamCut: '`unexpected EOF` (e.g. `read SSE stream: unexpected EOF`) or, over HTTP/2, `stream error: stream ID 1; INTERNAL_ERROR`',
      reset: '`EOF` / `read: connection reset by peer`'
    }
  }),
  client('node-fetch', 'Node.js fetch (undici)', {
    streamIdleAfterHeaders: true,
    values: {
      requestTimeout: v(null, '(no total timeout; use AbortSignal.timeout())', UNDICI),
      firstByteTimeout: v(sec(300), 'headersTimeout', UNDICI, { symptom: '`TypeError: fetch failed` (cause `HeadersTimeoutError: Headers Timeout Error`, `UND_ERR_HEADERS_TIMEOUT`)' }),
      streamIdleTimeout: v(sec(300), 'bodyTimeout', UNDICI, { symptom: '`TypeError: terminated` (cause `BodyTimeoutError: Body Timeout Error`, `UND_ERR_BODY_TIMEOUT`)' }),
      connectTimeout: v(sec(10), 'connectTimeout', UNDICI, { symptom: '`UND_ERR_CONNECT_TIMEOUT`' }),
      clientIdleTimeout: v(sec(4), 'keepAliveTimeout', UNDICI, { note: 'with a server Keep-Alive: timeout=N hint: N − 2 s (keepAliveTimeoutThreshold), at most 600 s (keepAliveMaxTimeout)' })
    },
    sees: { streamCut: '`TypeError: terminated`', reset: '`TypeError: fetch failed` (cause `SocketError: other side closed`, `UND_ERR_SOCKET`)' }
  }),
  client('axios', 'axios (Node.js)', {
    values: {
      requestTimeout: v(null, 'timeout (0 = none)', AXIOS, { symptom: 'when set: `ECONNABORTED` `timeout of Nms exceeded`' })
    },
    sees: { reset: '`Error: socket hang up` (`code: \'ECONNRESET\'`)' }
  }),
  client('okhttp', 'OkHttp', {
    values: {
      requestTimeout: v(null, 'callTimeout', `${OKHTTP}/OkHttpClient.kt`, { symptom: 'when set: `InterruptedIOException: timeout`' }),
      streamIdleTimeout: v(sec(10), 'readTimeout', `${OKHTTP}/OkHttpClient.kt`, { symptom: '`SocketTimeoutException`', note: 'a gap between bytes, the wait for the response headers included' }),
      connectTimeout: v(sec(10), 'connectTimeout', `${OKHTTP}/OkHttpClient.kt`, { symptom: '`SocketTimeoutException`' }),
      clientIdleTimeout: v(sec(300), 'ConnectionPool(keepAliveDuration)', `${OKHTTP}/ConnectionPool.kt`)
    }
  }),
  client('java-httpclient', 'Java java.net.http.HttpClient (JDK 11+)', {
    values: {
      firstByteTimeout: v(null, 'HttpRequest.Builder.timeout()', `${JAVA_REQUEST} ; Java Coding Problems ch.257 ("By default, a request has no timeout")`, { symptom: 'when set: `HttpTimeoutException`' }),
      connectTimeout: v(null, 'HttpClient.Builder.connectTimeout()', JAVA_CONNECT, { symptom: 'when set: `HttpConnectTimeoutException`', note: 'unset: the kernel gives up after ~127 s (tcp_syn_retries=6)' }),
      clientIdleTimeout: v(sec(1200), 'jdk.httpclient.keepalive.timeout', JAVA_POOL, { note: 'longer than almost every server and load balancer idle timeout' })
    },
    sees: {
      reset: '`IOException` (`Connection reset by peer`, `Broken pipe`)'
    }
  }),
  client('chrome', 'Chrome (fetch, XHR, EventSource)', {
    values: {
      requestTimeout: v(null, 'fetch()/XHR total (none in the Fetch standard)', 'https://fetch.spec.whatwg.org/ (no timeout concept; use AbortSignal.timeout())', { confirmed: false, note: 'one third-party page claims Chrome gives up after 300 s; no second source' }),
      clientIdleTimeout: v(sec(300), 'kUsedIdleSocketTimeout', CHROMIUM_POOL, { note: 'sockets never used: 10 s (kUnusedIdleSocketTimeout); read from an older snapshot' })
    },
    resendsOnStaleConnection: CHROMIUM_RESEND,
    sees: {
      streamCut: '`net::ERR_HTTP2_PROTOCOL_ERROR 200 (OK)` (HTTP/2) or `net::ERR_INCOMPLETE_CHUNKED_ENCODING 200 (OK)` (HTTP/1.1)'
    }
  }),
  sdkPreset('openai-sdk', 'OpenAI', OPENAI_PY, HTTPX_CUT),
  sdkPreset('anthropic-sdk', 'Anthropic', ANTHROPIC_PY, HTTPX_CUT)
]
