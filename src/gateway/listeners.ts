// Client-facing listeners: the Listener interface the lifecycle sees, and HTTP/1.1 here (HTTP/2,
// TLS + ALPN and h2c, in h2.ts, which reuses the HTTP/1.1 settings for its HTTP/1.1 side).
// Node's parser enforces the request-head limits; the clientError handler turns its errors into
// outcomes with the gateway's error response.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { http } from '../node-http.ts'
import type { Server as NetServer, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { TLSSocket } from 'node:tls'
import type { DownstreamConfig, ListenAddress, ListenerConfig } from '../config/runtime.ts'
import type { GatewayLog } from '../observe/log.ts'
import { errorDocument, type Ending } from './outcome.ts'
import { writeRawErrorResponse } from './respond.ts'
import { randomUUID } from 'node:crypto'
import type { ResetBudget } from './flood.ts'

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void
export type AccessSink = Pick<GatewayLog, 'access'>

export interface ListenerHandlers {
  request: RequestHandler
  /** HTTP/1.1 upgrades for which shouldUpgrade is true; others are plain requests. */
  upgrade?: UpgradeHandler
  shouldUpgrade?: (req: IncomingMessage) => boolean
  /**
   * Node's parser failed on a connection whose response is in progress (a bad chunk, an EOF
   * mid-body): the error belongs to that request, which ends with this outcome.
   */
  requestError?: (res: ServerResponse, ending: Ending) => void
  /** HTTP/2: the gateway-wide reset budget, and what to do when a session is cut for flooding. */
  resetFlood?: { budget: ResetBudget, cut: () => void }
}

/** One client-facing listener, whatever its protocol, as the lifecycle sees it. */
export interface Listener {
  readonly server: NetServer
  /** Close idle HTTP/1.1 keep-alive connections (after a response, while draining). */
  closeIdle (): void
  /** Stop accepting connections; close idle ones; GOAWAY on HTTP/2 sessions (their streams finish). */
  stopAccepting (): void
  /** End every connection now. */
  closeAll (): void
}

export function createHttp1Listener (_config: ListenerConfig, downstream: DownstreamConfig, log: AccessSink, handlers: ListenerHandlers): Listener {
  const server = http.createServer({
    keepAlive: true,
    keepAliveInitialDelay: downstream.tcpKeepAliveMs,
    ...(handlers.shouldUpgrade === undefined ? {} : { shouldUpgradeCallback: handlers.shouldUpgrade })
  })
  configureHttp1(server, downstream)
  const tracked = attachClientErrors(server, 'connection', downstream, log, handlers.request, handlers.requestError)
  server.on('request', tracked)
  const upgrade = handlers.upgrade
  if (upgrade !== undefined) server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => upgrade(req, socket, head))
  return {
    server,
    closeIdle: () => server.closeIdleConnections(),
    stopAccepting: () => {
      server.close()
      server.closeIdleConnections()
    },
    closeAll: () => {
      server.close()
      server.closeAllConnections()
    }
  }
}

/** Node's HTTP/1.1 server settings; all are read after construction (at listen, per connection). */
interface Http1Settings {
  connectionsCheckingInterval: number
  headersTimeout: number
  requestTimeout: number
  keepAliveTimeout: number
  keepAliveTimeoutBuffer: number
  maxHeaderSize: number
  maxHeadersCount: number
  timeout: number
}

/**
 * The HTTP/1.1 limits of a server: a plain one, or the HTTP/1.1 side of a TLS one (Node's
 * Http2SecureServer with allowHTTP1 reads the same properties). Set before listen().
 */
export function configureHttp1 (server: object, downstream: DownstreamConfig): void {
  const s = server as Http1Settings
  // Node checks the head timeout on an interval (30 s by default): far too coarse for a named
  // limit of a few seconds, so check at a tenth of the limit, 50 ms to 1 s.
  s.connectionsCheckingInterval = Math.min(1000, Math.max(50, Math.floor(downstream.headersTimeoutMs / 10)))
  s.headersTimeout = downstream.headersTimeoutMs
  // Node's requestTimeout (300 s) would cut a slow, steady upload; bodyIdleTimeout replaces it.
  s.requestTimeout = 0
  // Node closes an idle connection keepAliveTimeoutBuffer (1 s) after the keepAliveTimeout it
  // advertises in `Keep-Alive: timeout=`, so that a client reusing it at the advertised time does
  // not race the close. The close itself must come at idleTimeout, the named limit: the advertised
  // time is that much earlier instead.
  const buffer = Math.min(1000, Math.floor(downstream.idleTimeoutMs / 2))
  s.keepAliveTimeout = downstream.idleTimeoutMs - buffer
  s.keepAliveTimeoutBuffer = buffer
  s.maxHeaderSize = downstream.maxHeaderSize
  // Node silently drops the fields past maxHeadersCount (Content-Length among them: a POST then
  // went upstream without its body). One more than the limit is kept, so the request is refused.
  s.maxHeadersCount = downstream.maxHeaderCount + 1
  s.timeout = 0
}

/**
 * Node starts the head clock of a connection's first request when the connection opens, so the
 * time a head timeout took can be told; for a later request it starts at a first byte the
 * gateway never sees. `opened` is the event that gives the socket clientError will name.
 * Returns `request` with the bookkeeping clientError needs in front of it: the server's one
 * request listener (a second listener costs every request an emit over an array).
 */
export function attachClientErrors (server: NetServer, opened: 'connection' | 'secureConnection', downstream: DownstreamConfig, log: AccessSink, request: RequestHandler, requestError?: ListenerHandlers['requestError']): RequestHandler {
  const openedAt = new WeakMap<Socket, number>()
  /**
   * The last response on a connection: in progress until it closes. Held weakly: an idle
   * keep-alive connection must not keep its finished request and response (a few KB) alive.
   */
  const lastResponse = new WeakMap<Socket, WeakRef<ServerResponse>>()
  server.on(opened, (socket: Socket) => openedAt.set(socket, performance.now()))
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // A TLS handshake that failed has no HTTP to answer in (alpnProtocol is set by a handshake).
    if (opened === 'secureConnection' && ((socket as TLSSocket).alpnProtocol ?? null) === null) {
      socket.destroy()
      return
    }
    const res = lastResponse.get(socket)?.deref()
    if (res !== undefined && !res.closed && requestError !== undefined && socket.writable) {
      // Never a second response into the one in progress, never a second access line.
      const code = err.code ?? ''
      const ending: Ending = code === 'HPE_INVALID_EOF_STATE'
        ? { outcome: 'client_aborted' }
        : { outcome: 'bad_request', detail: `the request could not be parsed (${code || err.message})` }
      requestError(res, ending)
      if (ending.outcome === 'client_aborted') socket.destroy()
      return
    }
    onClientError(err, socket, downstream, log, openedAt.get(socket))
  })
  return (req, res) => {
    // An HTTP/2 stream's request has no socket of its own; its errors are stream errors.
    if ((req as { stream?: unknown }).stream === undefined) {
      openedAt.delete(req.socket)
      lastResponse.set(req.socket, new WeakRef(res))
    }
    request(req, res)
  }
}

function onClientError (err: NodeJS.ErrnoException, socket: Socket, downstream: DownstreamConfig, log: AccessSink, openedAt: number | undefined): void {
  const code = err.code ?? ''
  // A client that went away, or a keep-alive connection closed between requests: nothing to answer.
  if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) {
    socket.destroy()
    return
  }
  let ending: Ending
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    ending = { outcome: 'request_headers_timeout', limitMs: downstream.headersTimeoutMs }
  } else if (code === 'HPE_HEADER_OVERFLOW') {
    ending = { outcome: 'bad_request', variant: 'head_too_large', detail: 'the request head is larger than downstream.maxHeaderSize' }
  } else {
    ending = { outcome: 'bad_request', detail: `the request could not be parsed (${code || err.message})` }
  }
  const requestId = randomUUID()
  // A later request's head timed out at least its limit after its unseen first byte.
  const elapsedMs = openedAt !== undefined ? Math.round(performance.now() - openedAt) : ending.limitMs ?? 0
  const status = writeRawErrorResponse(socket, ending, errorDocument(ending, { route: null, upstream: null, requestId, elapsedMs }))
  log.access({
    requestId,
    method: '',
    host: null,
    path: '',
    route: null,
    upstream: null,
    endpoint: null,
    protocol: 'HTTP/1.1',
    clientIp: socket.remoteAddress ?? '',
    status,
    outcome: ending.outcome,
    attempts: 0,
    bytesIn: 0,
    bytesOut: 0,
    durationMs: elapsedMs,
    firstByteMs: null,
    ...(ending.limitMs === undefined ? {} : { limitMs: ending.limitMs })
  })
}

/**
 * Binds a server. `reusePort`: a socket of its own with SO_REUSEPORT, which other worker processes
 * bind too (the kernel spreads connections over them); `exclusive` keeps node:cluster from
 * sharing one socket through the primary instead.
 */
/**
 * Connections the kernel may hold for accept(): Node's default, 511, overflows when thousands of
 * clients connect at once (a reconnect burst after a deploy), and each SYN dropped then waits
 * 1 s, 3 s … to be sent again. Linux caps the value at net.core.somaxconn (4096 by default).
 */
const LISTEN_BACKLOG = 65535

export function listen (server: NetServer, address: ListenAddress, options: { reusePort?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    const reuse = options.reusePort === true ? { reusePort: true, exclusive: true } : {}
    server.listen({ port: address.port, host: address.host, backlog: LISTEN_BACKLOG, ...reuse }, () => {
      server.off('error', reject)
      const bound = server.address()
      if (bound === null || typeof bound === 'string') return resolve(String(bound))
      resolve(bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`)
    })
  })
}
