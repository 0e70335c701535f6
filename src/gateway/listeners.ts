// Client-facing HTTP/1.1 listeners. Node's parser enforces the request-head limits; the
// clientError handler turns its errors into outcomes with the gateway's error response.
import http from 'node:http'
import type { Socket } from 'node:net'
import type { DownstreamConfig, ListenAddress } from '../config/runtime.ts'
import type { GatewayLog } from '../observe/log.ts'
import { errorDocument, outcomeSpec, proxyStatusHeader, type Ending } from './outcome.ts'
import { randomUUID } from 'node:crypto'

export type RequestHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void

export function createListener (downstream: DownstreamConfig, log: Pick<GatewayLog, 'access'>, handler: RequestHandler): http.Server {
  const server = http.createServer({
    // Node checks the head timeout on an interval (30 s by default): far too coarse for a named
    // limit of a few seconds, so check at a tenth of the limit, 50 ms to 1 s.
    connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(downstream.headersTimeoutMs / 10))),
    headersTimeout: downstream.headersTimeoutMs,
    // Node's requestTimeout (300 s) would cut a slow, steady upload; bodyIdleTimeout replaces it.
    requestTimeout: 0,
    keepAliveTimeout: downstream.idleTimeoutMs,
    maxHeaderSize: downstream.maxHeaderSize,
    keepAlive: true,
    keepAliveInitialDelay: downstream.tcpKeepAliveMs
  }, handler)
  server.timeout = 0
  // Node starts the head clock of a connection's first request when the connection opens, so the
  // time a head timeout took can be told; for a later request it starts at a first byte the
  // gateway never sees.
  const openedAt = new WeakMap<Socket, number>()
  server.on('connection', (socket: Socket) => openedAt.set(socket, performance.now()))
  server.on('request', (req: http.IncomingMessage) => openedAt.delete(req.socket))
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => onClientError(err, socket, downstream, log, openedAt.get(socket)))
  return server
}

function onClientError (err: NodeJS.ErrnoException, socket: Socket, downstream: DownstreamConfig, log: Pick<GatewayLog, 'access'>, openedAt: number | undefined): void {
  const code = err.code ?? ''
  // A client that went away, or a keep-alive connection closed between requests: nothing to answer.
  if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) {
    socket.destroy()
    return
  }
  let ending: Ending
  let status: number
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    ending = { outcome: 'request_headers_timeout', limitMs: downstream.headersTimeoutMs }
    status = outcomeSpec('request_headers_timeout').status
  } else if (code === 'HPE_HEADER_OVERFLOW') {
    // RFC 6585 §5: 431 Request Header Fields Too Large; the outcome stays bad_request.
    ending = { outcome: 'bad_request', detail: 'the request head is larger than downstream.maxHeaderSize' }
    status = 431
  } else {
    ending = { outcome: 'bad_request', detail: `the request could not be parsed (${code || err.message})` }
    status = 400
  }
  const requestId = randomUUID()
  // A later request's head timed out at least its limit after its unseen first byte.
  const elapsedMs = openedAt !== undefined ? Math.round(performance.now() - openedAt) : ending.limitMs ?? 0
  const document = errorDocument(ending, { route: null, upstream: null, requestId, elapsedMs })
  const body = JSON.stringify({ error: document })
  const proxyStatus = proxyStatusHeader(ending, elapsedMs)
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n` +
    'content-type: application/json\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    `x-longhaul-error: ${ending.outcome}\r\n` +
    `x-request-id: ${requestId}\r\n` +
    (proxyStatus === null ? '' : `proxy-status: ${proxyStatus}\r\n`) +
    'connection: close\r\n\r\n' + body
  )
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

export function listen (server: http.Server, address: ListenAddress): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(address.port, address.host, () => {
      server.off('error', reject)
      const bound = server.address()
      if (bound === null || typeof bound === 'string') return resolve(String(bound))
      resolve(bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`)
    })
  })
}
