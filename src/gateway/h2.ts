// HTTP/2 listeners: HTTPS with HTTP/2 and HTTP/1.1 on one port by ALPN (listen[].tls), and
// cleartext HTTP/2 with prior knowledge (protocol: h2c). They use Node's compatibility API, so an
// Exchange runs unchanged on either protocol; the two classes below make an HTTP/2 stream look
// like what the Exchange expects of an HTTP/1.1 request, and make its cuts look like cuts.
import http2 from 'node:http2'
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import type { DownstreamConfig, ListenerConfig } from '../config/runtime.ts'
import { readTlsFiles } from '../config/tls.ts'
import { attachClientErrors, configureHttp1, type Listener, type ListenerHandlers, type AccessSink } from './listeners.ts'
import type { ResetBudget } from './flood.ts'
import type { AccessRecord } from '../observe/log.ts'
import { requestIdOf } from './headers.ts'
import { OUTCOMES } from './outcome.ts'

const { NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_REFUSED_STREAM } = http2.constants
// How long a cut stream waits for the client's answer to the PING behind its last data.
const RESET_WAIT_MS = 1000

/** Streams the gateway itself reset (a cut, a send timeout): not the client's resets. */
const resetByGateway = new WeakSet<http2.ServerHttp2Stream>()

/**
 * Rapid reset (CVE-2023-44487): a client that opens and resets streams faster than this gets
 * its session closed with GOAWAY. nghttp2's token bucket: a burst of 1000 resets, then 33 a
 * second (Node's defaults, set here on purpose, so they are in writing). A client that resets
 * now and then (a user pressing stop) is far below it.
 */
export const STREAM_RESET_BURST = 1000
export const STREAM_RESET_RATE = 33

/** RFC 9113 §8.2.2: connection-specific fields are malformed in HTTP/2; Node throws on them. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings'])

/**
 * The request as an HTTP/1.1 intermediary must forward it:
 * - RFC 9113 §8.3.1: "An intermediary that forwards a request over HTTP/1.1 MUST construct a Host
 *   header field if one is not present in a request by copying the value of the :authority
 *   pseudo-header field." Pseudo-header fields are not fields: they are not forwarded.
 * - RFC 9113 §8.2.3: split Cookie fields are joined with "; " before going to HTTP/1.1.
 * - HTTP/2 frames a body itself: a request whose HEADERS did not end the stream has a body, of
 *   unknown length when content-length is absent, which HTTP/1.1 calls chunked.
 */
class GatewayH2Request extends http2.Http2ServerRequest {
  constructor (stream: http2.ServerHttp2Stream, headers: IncomingHttpHeaders, options: object | undefined, rawHeaders: string[]) {
    const authority = headers[':authority']
    if (headers.host === undefined && typeof authority === 'string') headers.host = authority
    const raw: string[] = []
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!
      if (name.startsWith(':') || name.toLowerCase() === 'cookie') continue
      raw.push(name, rawHeaders[i + 1]!)
    }
    if (headers.cookie !== undefined) raw.push('cookie', Array.isArray(headers.cookie) ? headers.cookie.join('; ') : headers.cookie)
    if (!rawHeaders.some((name, i) => i % 2 === 0 && name.toLowerCase() === 'host') && headers.host !== undefined) raw.push('host', headers.host)
    if (!stream.endAfterHeaders && headers['content-length'] === undefined) headers['transfer-encoding'] = 'chunked'
    super(stream, headers, options as never, raw)
  }
}

/**
 * A response that an Exchange can cut. Node's destroy() without an error resets the stream with
 * NO_ERROR, which a client cannot tell from a clean end; DESIGN.md §11 asks for INTERNAL_ERROR.
 */
class GatewayH2Response extends http2.Http2ServerResponse {
  constructor (stream: http2.ServerHttp2Stream) {
    super(stream)
    // RFC 9113 §8.1: a server that completed its response before the request ended (an error
    // answer to an upload) "MAY request that the client abort transmission of a request without
    // error by sending a RST_STREAM with an error code of NO_ERROR". Without it the stream stays
    // open, holding one of the session's concurrent streams, until the client gives up.
    stream.once('finish', () => {
      if (!stream.closed && stream.state.remoteClose !== 1) stream.close(NGHTTP2_NO_ERROR)
    })
  }

  // Connection: close (draining, some error responses) has no meaning in HTTP/2, where GOAWAY
  // does that job: connection-specific fields are dropped instead of failing the response.
  override writeHead (statusCode: number, a?: unknown, b?: unknown): this {
    const headers = (typeof a === 'object' && a !== null ? a : b) as OutgoingHttpHeaders | undefined
    if (headers !== undefined && headers !== null && !Array.isArray(headers)) {
      for (const name of Object.keys(headers)) {
        const lower = name.toLowerCase()
        if (CONNECTION_SPECIFIC.has(lower) || (lower === 'te' && headers[name] !== 'trailers')) delete headers[name]
      }
    }
    return super.writeHead(statusCode, a as never, b as never)
  }

  /**
   * The reset waits until the client has read what went before it (the error record): curl 7.88
   * drops DATA that it reads together with the RST_STREAM behind it. The client's answer to a
   * PING sent after that data says it processed everything before; RESET_WAIT_MS bounds the wait
   * for a client that does not answer. A stream already closed (its client went away) has
   * nothing to wait for.
   */
  override destroy (): this {
    const stream = this.stream
    if (stream.closed || stream.destroyed) return this
    resetByGateway.add(stream)
    const reset = (): void => {
      clearTimeout(timer)
      if (!stream.closed && !stream.destroyed) stream.close(NGHTTP2_INTERNAL_ERROR)
    }
    const timer = setTimeout(reset, RESET_WAIT_MS)
    stream.once('close', () => clearTimeout(timer))
    const session = stream.session
    if (session === undefined || session.destroyed) reset()
    else resetAfterPing(session, reset)
    return this
  }
}

/**
 * Resets waiting for their client's answer to a PING, per session. Streams cut together (a
 * drain, a frozen upstream) share one PING: one is in flight at a time, and it answers every
 * reset queued before it was sent; those queued meanwhile wait for the next one. (Node allows
 * 10 unanswered PINGs per session and cancels the rest.)
 */
const pingQueues = new WeakMap<http2.Http2Session, { next: Array<() => void>, inFlight: boolean }>()

function resetAfterPing (session: http2.Http2Session, reset: () => void): void {
  let queue = pingQueues.get(session)
  if (queue === undefined) pingQueues.set(session, queue = { next: [], inFlight: false })
  queue.next.push(reset)
  if (!queue.inFlight) sendPing(session, queue)
}

function sendPing (session: http2.Http2Session, queue: { next: Array<() => void>, inFlight: boolean }): void {
  const batch = queue.next
  queue.next = []
  queue.inFlight = true
  let answered = false
  // An answer, an error or a cancelled PING alike: whatever it was, the batch waits no longer.
  const done = (): void => {
    if (answered) return
    answered = true
    queue.inFlight = false
    for (const reset of batch) reset()
    if (queue.next.length > 0 && !session.destroyed) sendPing(session, queue)
  }
  try {
    if (!session.ping(done)) done()
  } catch {
    done() // the session closed in between
  }
}
// Node's types declare these three, but its compatibility response does not have them (Node 24):
// the Exchange reads them to decide whether an error record can still be written, and a drain
// reads `closed` to know whether a cut response still has to close (undefined, it would wait for
// a 'close' event that has already gone by).
// writableFinished is redefined: a stream reset by the client also ends its writable side, and
// the Exchange must not read that as a response it finished itself (then the client's
// RST_STREAM would not abort the upstream request: principle 7).
Object.defineProperties(GatewayH2Response.prototype, {
  writableNeedDrain: { get (this: GatewayH2Response) { return this.stream.writableNeedDrain } },
  destroyed: { get (this: GatewayH2Response) { return this.stream.destroyed } },
  closed: { get (this: GatewayH2Response) { return this.stream.closed || this.stream.destroyed } },
  writableFinished: { get (this: GatewayH2Response) { return this.writableEnded && this.stream.writableFinished && (this.stream.rstCode ?? NGHTTP2_NO_ERROR) === NGHTTP2_NO_ERROR } }
})

export function createH2Listener (config: ListenerConfig, downstream: DownstreamConfig, log: AccessSink, handlers: ListenerHandlers): Listener {
  const options: http2.SecureServerOptions = {
    settings: { maxHeaderListSize: downstream.maxHeaderSize },
    // Node resets a stream past maxHeaderListPairs (128 by default) with no answer; past
    // downstream.maxHeaderCount the gateway answers 431 itself (request-head.ts), so Node's bound
    // sits above it: the five pseudo-header fields, and one field over the limit.
    maxHeaderListPairs: downstream.maxHeaderCount + 6,
    streamResetBurst: STREAM_RESET_BURST,
    streamResetRate: STREAM_RESET_RATE,
    Http2ServerRequest: GatewayH2Request as unknown as typeof http2.Http2ServerRequest,
    Http2ServerResponse: GatewayH2Response,
    keepAlive: true,
    keepAliveInitialDelay: downstream.tcpKeepAliveMs
  } as http2.SecureServerOptions
  let server: http2.Http2SecureServer | http2.Http2Server
  let request = handlers.request
  if (config.kind === 'tls') {
    const material = readTlsFiles(config.tls!)
    const secure = http2.createSecureServer({ ...options, ...material, allowHTTP1: true })
    // The HTTP/1.1 side of the port takes the same limits as a plain HTTP/1.1 listener.
    configureHttp1(secure as never, downstream)
    request = attachClientErrors(secure, 'secureConnection', downstream, log, handlers.request, handlers.requestError)
    const { upgrade, shouldUpgrade } = handlers
    if (upgrade !== undefined && shouldUpgrade !== undefined) {
      ;(secure as unknown as { shouldUpgradeCallback: typeof shouldUpgrade }).shouldUpgradeCallback = shouldUpgrade
      secure.on('upgrade', (req, socket, head) => upgrade(req, socket, head))
    }
    server = secure
  } else {
    server = http2.createServer(options)
  }
  server.on('request', (req, res) => request(req as never, res as never))

  // Every TCP connection, so that closeAll can end them whatever protocol they speak.
  const sockets = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  const flood = handlers.resetFlood
  server.on('session', (session: http2.ServerHttp2Session) => {
    const countReset = flood === undefined ? undefined : watchResets(session, flood.budget, flood.cut)
    const clientIp = session.socket?.remoteAddress ?? ''
    watchStreams(session, downstream, (stream, headers) => {
      refuse(stream)
      log.access(refusedRecord(headers, clientIp))
      // Opened and closed with no work done, like a stream the client resets: a client that keeps
      // opening streams past the limit is a flood.
      countReset?.()
    })
  })
  // A session error (a protocol violation, a flood) ends that session only; Node has already
  // answered it with GOAWAY.
  server.on('sessionError', () => {})

  return {
    server,
    closeIdle: () => {
      // Node 24's Http2SecureServer has it (for its HTTP/1.1 side); @types/node lags.
      if (config.kind === 'tls') (server as unknown as { closeIdleConnections (): void }).closeIdleConnections()
    },
    // Node's close() sends GOAWAY on every session (open streams finish, new ones are refused)
    // and closes idle HTTP/1.1 connections.
    stopAccepting: () => server.close(),
    closeAll: () => {
      server.close()
      for (const socket of sockets) socket.destroy()
    }
  }
}

/**
 * Counts the streams this session's client resets before their response ended (Node's 'aborted':
 * the writable side was still open; resets the gateway made itself do not count). When the
 * gateway-wide budget says the session is an abuser (flood.ts), it gets GOAWAY ENHANCE_YOUR_CALM.
 * Returns the count of one more such stream (a refused one).
 */
function watchResets (session: http2.ServerHttp2Session, budget: ResetBudget, cut: () => void): () => void {
  const resets = budget.session()
  let cutting = false
  const count = (): void => {
    if (cutting || session.destroyed || session.closed) return
    if (!resets.reset()) return
    cutting = true
    cut()
    // Not from inside nghttp2's callback that reported the reset: once it has returned.
    setImmediate(() => session.destroy(new Error('HTTP/2 streams reset faster than downstream.resetFlood allows'), NGHTTP2_ENHANCE_YOUR_CALM))
  }
  session.on('stream', (stream: http2.ServerHttp2Stream) => {
    stream.once('aborted', () => { if (!resetByGateway.has(stream)) count() })
  })
  return count
}

/**
 * The session's open streams. Past downstream.maxConcurrentStreams a new one goes to `refuse`
 * instead of its 'stream' event: no listener sees it, so no routing or upstream work starts, and
 * Node's compatibility layer, which answers some streams the moment it sees them (100 Continue
 * for `expect`, 405 for CONNECT), does not throw (uncaught) on a stream already closed.
 *
 * The limit is the gateway's own, not advertised in SETTINGS_MAX_CONCURRENT_STREAMS: nghttp2
 * enforces exactly the value a server advertises, and treats a stream past it (once
 * acknowledged) as a connection error that tears the session down with every stream on it, where
 * RFC 9113 §5.1.2 asks for a stream error. So the extra stream gets REFUSED_STREAM (safe to
 * retry, §8.7) and the others go on; a burst is bounded by the refusal itself, Node's
 * maxSessionMemory and downstream.resetFlood, which counts each refusal.
 *
 * With none open for downstream.idleTimeout, the session is closed with GOAWAY (Node's own
 * session timeout counts socket silence, which would also close a session whose one stream waits
 * quietly on a slow upstream). One timer per session, refresh()ed.
 */
function watchStreams (session: http2.ServerHttp2Session, downstream: DownstreamConfig, refuse: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void): void {
  const max = downstream.maxConcurrentStreams
  let open = 0
  const timer = setTimeout(() => { if (open === 0 && !session.closed) session.close() }, downstream.idleTimeoutMs)
  timer.unref()
  const emit = session.emit
  session.emit = function (this: http2.ServerHttp2Session, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'stream') {
      const stream = args[0] as http2.ServerHttp2Stream
      if (open >= max) {
        refuse(stream, args[1] as http2.IncomingHttpHeaders)
        return true
      }
      open++
      stream.once('close', () => {
        if (--open === 0) timer.refresh()
      })
    }
    return emit.call(this, event, ...args)
  } as typeof session.emit
  session.once('close', () => clearTimeout(timer))
}

/** RST_STREAM REFUSED_STREAM: the client may send the request again (RFC 9113 §8.7). */
function refuse (stream: http2.ServerHttp2Stream): void {
  // Node destroys a stream closed with an error code with that error: no listener, no crash.
  stream.on('error', ignoreError)
  stream.close(NGHTTP2_REFUSED_STREAM)
}

function ignoreError (): void {}

function refusedRecord (headers: http2.IncomingHttpHeaders, clientIp: string): AccessRecord {
  const authority = headers[':authority'] ?? headers.host
  return {
    requestId: requestIdOf(headers),
    method: headers[':method'] ?? '',
    host: typeof authority === 'string' ? authority : null,
    path: headers[':path'] ?? '',
    route: null,
    upstream: null,
    endpoint: null,
    protocol: 'HTTP/2.0',
    clientIp,
    status: OUTCOMES.too_many_streams.status,
    outcome: 'too_many_streams',
    attempts: 0,
    bytesIn: 0,
    bytesOut: 0,
    durationMs: 0,
    firstByteMs: null
  }
}
