// WebSocket tunnels: an `Upgrade: websocket` request on a route goes to an upstream endpoint as
// an HTTP/1.1 upgrade (undici's `upgrade` dispatch); when the endpoint answers 101 the client's
// connection and the endpoint's are joined byte for byte until one side closes. The gateway
// does not parse frames: what it bounds is time. Before the 101 a tunnel is a request like any
// other (firstByte, request, the client's x-longhaul-timeout-ms, the gateway's error responses);
// after it, `tunnelIdle` bounds silence in both directions and `request` its whole life (unless
// none). One access line per tunnel, at its end, with the bytes each way.
import type { IncomingMessage, IncomingHttpHeaders, ServerResponse } from 'node:http'
import { http } from '../node-http.ts'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { Endpoint, EndpointDispatchOptions } from '../upstream/endpoint.ts'
import type { QueueTicket } from '../upstream/admission.ts'
import type { AccessRecord } from '../observe/log.ts'
import { downstreamResponseHeaders, protoOf, upstreamRequestHeaders } from './headers.ts'
import type { Ending } from './outcome.ts'
import { classifyFailure, GatewayAbort } from './classify.ts'
import { writeErrorResponse } from './respond.ts'
import { Passage, type PassageHost } from './passage.ts'
import type { Generation } from './generation.ts'
import { connectionQueueTimedOut } from './attempts.ts'

type DispatchController = Dispatcher.DispatchController

/** How long a closing side may take to flush what it was sent before it is destroyed. */
const CLOSE_GRACE_MS = 1000

/**
 * RFC 6455 §4.2.1: a WebSocket opening handshake is a GET whose Upgrade lists `websocket` (Node
 * has checked Connection: upgrade). Other upgrades (h2c, …) are served as plain requests, with
 * Upgrade dropped as hop-by-hop.
 */
export function isWebSocketUpgrade (req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade
  return req.method === 'GET' && typeof upgrade === 'string' && upgrade.split(',').some((token) => token.trim().toLowerCase() === 'websocket')
}

/** Fields of the upstream's 101 that the gateway writes itself, or that are hop-by-hop. */
const OWN_101_FIELDS = new Set(['connection', 'upgrade', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'x-request-id'])

export class Tunnel extends Passage implements Dispatcher.DispatchHandler {
  readonly socket: Duplex
  /** Resolves once the client's connection is closed. */
  readonly closed: Promise<void>
  endpoint: Endpoint | null = null
  controller: DispatchController | null = null
  attempts = 0
  /** Bytes the client sent after its request head, before the tunnel existed. */
  #head: Buffer
  /** The endpoint's connection once it switched protocols. */
  #peer: Duplex | null = null
  /** An HTTP response on the client's connection: a gateway error, or the upstream's refusal. */
  #res: ServerResponse | null = null
  #upstreamDone = false
  /** Waiting for a connection slot of a capped endpoint. */
  #waiting: QueueTicket | null = null

  constructor (gen: Generation, host: PassageHost, req: IncomingMessage, socket: Duplex, head: Buffer) {
    super(gen, host, req)
    this.socket = socket
    this.#head = head
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()))
  }

  whenClosed (): Promise<void> { return this.closed }

  destroyClientSide (): void { this.socket.destroy() }

  start (): void {
    const { socket } = this
    socket.on('error', () => {}) // 'close' follows, and decides
    socket.once('close', () => { if (this.ending === null) this.finish(this.#peer === null ? { outcome: 'client_aborted' } : this.#sideClosed('client')) })
    this.open({ tunnel: true }, () => this.#send())
  }

  /**
   * The handshake goes to one endpoint. An upgrade takes its connection out of the pool (undici
   * detaches it), so a tunnel never holds a pooled connection, and is never retried: a
   * handshake is not replayed blindly. It holds one of the endpoint's connection slots for its
   * whole life (it holds a connection), taken like a request's: now, or after a wait in the open.
   */
  #send (): void {
    const endpoint = this.target!.upstream.pick()
    if (endpoint === undefined) return this.finish({ outcome: 'upstream_unavailable', detail: 'the upstream has no endpoint' })
    const ticket = endpoint.acquire(() => {
      this.#waiting = null
      this.guarded(() => this.#dispatch(endpoint))
    }, () => {
      this.#waiting = null
      this.finish(connectionQueueTimedOut(endpoint))
    })
    if (ticket !== null) this.#waiting = ticket
  }

  #dispatch (endpoint: Endpoint): void {
    const { req } = this
    this.endpoint = endpoint
    this.attempts = 1
    const options: EndpointDispatchOptions = {
      path: this.target!.path,
      method: 'GET',
      servername: endpoint.servername,
      upgrade: 'websocket',
      headers: upstreamRequestHeaders(req, {
        requestId: this.requestId,
        clientIp: this.clientIp,
        proto: protoOf(req),
        remainingMs: this.deadline!.remainingMs()
      })
    }
    endpoint.pool.dispatch(options, this)
  }

  onRequestStart (controller: DispatchController): void {
    if (this.ending !== null) controller.abort(new GatewayAbort(this.ending))
    else this.controller = controller
  }

  /** The endpoint switched protocols: answer the client with its 101, then join the two. */
  onRequestUpgrade (_controller: DispatchController, statusCode: number, headers: IncomingHttpHeaders, peer: Duplex): void {
    this.#upstreamDone = true
    if (this.ending !== null) {
      peer.destroy()
      return
    }
    this.#peer = peer
    this.firstByte(statusCode)
    this.target!.upstream.succeeded(this.endpoint!)
    this.deadline!.tunnelOpened()
    peer.on('error', () => {})
    const head = [`HTTP/1.1 101 ${http.STATUS_CODES[101]}`]
    for (const [name, value] of Object.entries(headers)) {
      if (OWN_101_FIELDS.has(name) || value === undefined) continue
      for (const v of Array.isArray(value) ? value : [value]) head.push(`${name}: ${v}`)
    }
    head.push('connection: upgrade', `upgrade: ${typeof headers.upgrade === 'string' ? headers.upgrade : 'websocket'}`, `x-request-id: ${this.requestId}`)
    this.socket.write(`${head.join('\r\n')}\r\n\r\n`)
    if (this.#head.length > 0) {
      this.bytesIn += this.#head.length
      peer.write(this.#head)
    }
    this.#join(this.socket, peer, (n) => { this.bytesIn += n })
    this.#join(peer, this.socket, (n) => { this.bytesOut += n })
    peer.once('close', () => { if (this.ending === null) this.finish(this.#sideClosed('upstream')) })
  }

  /**
   * One direction of the tunnel, with backpressure: a side that cannot take more pauses the
   * other. A FIN is passed on (half-close), so either side can finish first.
   */
  #join (from: Duplex, to: Duplex, count: (n: number) => void): void {
    from.on('data', (chunk: Buffer) => {
      count(chunk.length)
      this.deadline!.tunnelActivity()
      if (!to.write(chunk)) {
        from.pause()
        to.once('drain', () => {
          this.deadline!.tunnelActivity()
          from.resume()
        })
      }
    })
    from.once('end', () => to.end())
  }

  /** How a tunnel ends when one side's connection closes: cleanly after its FIN, or reset. */
  #sideClosed (side: 'client' | 'upstream'): Ending {
    const sock = side === 'client' ? this.socket : this.#peer!
    if (sock.readableEnded) return { outcome: 'ok' }
    return side === 'client' ? { outcome: 'client_aborted' } : { outcome: 'upstream_reset', detail: 'the tunnel\'s upstream connection was reset' }
  }

  /** The endpoint refused the upgrade with an ordinary response: the client gets it as it is. */
  onResponseStart (_controller: DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (this.ending !== null) return
    this.status = statusCode
    this.firstByteMs = this.elapsedMs()
    this.deadline!.responseStarted()
    if (statusCode >= 500) this.target!.upstream.failed(this.endpoint!, `status ${statusCode}`)
    const res = this.#response()
    res.writeHead(statusCode, downstreamResponseHeaders(headers, this.requestId))
  }

  onResponseData (controller: DispatchController, chunk: Buffer): void {
    if (this.ending !== null) return
    this.relay(this.#res!, controller, chunk)
  }

  onResponseEnd (): void {
    if (this.ending !== null) return
    this.#upstreamDone = true
    this.#res!.end(() => this.finish({ outcome: 'ok' }))
  }

  onResponseError (_controller: DispatchController | null, err: Error): void {
    if (this.ending !== null) return
    this.#upstreamDone = true
    const failure = classifyFailure(err, this.status !== 0)
    if (this.status === 0 && failure.kind !== 'other' && this.endpoint !== null) this.target!.upstream.failed(this.endpoint, failure.reason)
    this.finish(failure.ending)
  }

  /**
   * An HTTP/1.1 response written on the client's raw connection (Node gives an upgrade request
   * no ServerResponse), closed after it: the connection was asked to switch protocols.
   */
  #response (): ServerResponse {
    const res = new http.ServerResponse(this.req)
    res.assignSocket(this.socket as Socket)
    res.shouldKeepAlive = false
    res.once('finish', () => {
      res.detachSocket(this.socket as Socket)
      closeGracefully(this.socket)
    })
    this.#res = res
    return res
  }

  protected stopUpstream (ending: Ending): void {
    this.#waiting?.cancel()
    this.#waiting = null
    this.endpoint?.release()
    if (!this.#upstreamDone && this.controller !== null) this.controller.abort(new GatewayAbort(ending))
  }

  protected respond (ending: Ending): void {
    const outcome = ending.outcome
    const peer = this.#peer
    if (peer !== null) {
      // The tunnel was open. A clean close on one side ends the other after it got what was
      // sent to it; any other end (a limit, a reset, the drain) cuts both at once.
      if (outcome === 'ok') {
        closeGracefully(this.socket)
        closeGracefully(peer)
      } else {
        this.socket.destroy()
        peer.destroy()
      }
    } else if (this.#res !== null && this.#res.headersSent) {
      // The upstream's refusal was being relayed: cut short, it must not look complete.
      if (outcome !== 'ok') this.socket.destroy()
    } else if (outcome === 'client_aborted') {
      this.socket.destroy()
    } else {
      this.status = writeErrorResponse(this.#response(), ending, this.errorDocument(ending))
    }
  }

  protected override accessExtra (): Partial<AccessRecord> { return { upgrade: 'websocket' } }
}

/** FIN after what is queued, then the socket is released; a peer that does not read is cut. */
function closeGracefully (socket: Duplex): void {
  if (socket.destroyed) return
  const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS)
  timer.unref()
  socket.end(() => {
    clearTimeout(timer)
    socket.destroy()
  })
}
