// One probe request from the client's seat, over node:http(s): when its response headers, its
// first event and its end arrived, what ended it (a clean end, a FIN, an RST, the probe's own
// deadline) and the bytes that came. Nothing here interprets the result (see trial.ts).
import type { Agent, ClientRequest } from 'node:http'
import { http } from '../node-http.ts'
import https from 'node:https'
import type { Socket } from 'node:net'

/** How much of a body is kept: enough for any error page, never a whole long stream. */
export const BODY_KEPT = 16 * 1024
/** Response headers that name a hop or a cut (fingerprint.ts reads them). */
export const KEPT_HEADERS = ['server', 'via', 'proxy-status', 'x-longhaul-error', 'content-type', 'x-longhaul-probe', 'connection', 'cf-ray', 'x-cache', 'x-amzn-requestid', 'retry-after'] as const

export interface Seen {
  startedAt: number // performance.now() when the request was sent (its head, and for an upload its first chunk)
  headersAt: number | null
  /** The target's start event (stream shapes). */
  startEventAt: number | null
  endedAt: number
  status: number | null
  statusText: string | null
  headers: Record<string, string>
  body: string
  /** The message ended as HTTP says a message ends (Content-Length reached, last chunk). */
  complete: boolean
  /** How the connection ended it, when it did: a FIN, an RST (HTTP/2: RST_STREAM), or the probe's own deadline. */
  ending: 'fin' | 'rst' | 'deadline' | null
  /** HTTP/2: the RST_STREAM code that ended the stream. */
  rstCode: number | null
  error: string | null
  /** The socket, for the keep-alive trial, and its local port (the target reports the peer it saw). */
  socket: Socket | null
  localPort: number | null
  reusedSocket: boolean
}

export interface ExchangeOptions {
  url: URL
  method: 'GET' | 'POST'
  agent: Agent | false
  /** The probe's own deadline for this request, from its start. */
  deadlineMs: number
  headers?: Record<string, string>
  /** Writes the request body (the upload trial); called with the request once it is open. */
  body?: (req: ClientRequest) => Promise<void>
  startMarker?: string
}

/** A Seen with nothing seen yet, its clock started now. */
export function newSeen (over: Partial<Seen> = {}): Seen {
  return {
    startedAt: performance.now(), headersAt: null, startEventAt: null, endedAt: 0, status: null, statusText: null,
    headers: {}, body: '', complete: false, ending: null, error: null, socket: null, localPort: null, reusedSocket: false, rstCode: null, ...over,
  }
}

/** Ends an exchange once, whichever of its events comes first: stamps the end, cleans up, resolves. */
export function settler (seen: Seen, resolve: (seen: Seen) => void, cleanup: () => void): () => void {
  let settled = false
  return () => {
    if (settled) return
    settled = true
    cleanup()
    seen.endedAt = performance.now()
    resolve(seen)
  }
}

export function exchange (o: ExchangeOptions): Promise<Seen> {
  const lib = o.url.protocol === 'https:' ? https : http
  return new Promise((resolve) => {
    const seen = newSeen()
    const settle = settler(seen, resolve, () => clearTimeout(deadline))
    const req = lib.request(o.url, { method: o.method, agent: o.agent, headers: { 'user-agent': 'longhaul-probe/1', ...o.headers } })
    const deadline = setTimeout(() => {
      seen.ending ??= 'deadline'
      req.destroy(new Error(`no end within the probe's own deadline of ${o.deadlineMs} ms`))
    }, o.deadlineMs)
    req.on('socket', (socket: Socket) => {
      seen.socket = socket
      seen.reusedSocket = req.reusedSocket
      if (socket.localPort !== undefined) seen.localPort = socket.localPort
      else socket.once('connect', () => { seen.localPort = socket.localPort ?? null })
      const onEnd = (): void => { seen.ending ??= 'fin' }
      const onError = (err: NodeJS.ErrnoException): void => { if (err.code === 'ECONNRESET' || err.code === 'EPIPE') seen.ending ??= 'rst' }
      socket.on('end', onEnd)
      socket.on('error', onError)
      req.once('close', () => {
        socket.off('end', onEnd)
        socket.off('error', onError)
      })
    })
    req.on('error', (err: NodeJS.ErrnoException) => {
      seen.error ??= err.code ?? err.message
      if (seen.status === null) settle()
    })
    req.on('response', (res) => {
      seen.headersAt = performance.now()
      seen.status = res.statusCode ?? null
      seen.statusText = res.statusMessage ?? null
      for (const name of KEPT_HEADERS) {
        const v = res.headers[name]
        if (v !== undefined) seen.headers[name] = Array.isArray(v) ? v.join(', ') : v
      }
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        if (seen.body.length < BODY_KEPT) seen.body += chunk.slice(0, BODY_KEPT - seen.body.length)
        if (seen.startEventAt === null && o.startMarker !== undefined && seen.body.includes(o.startMarker)) seen.startEventAt = performance.now()
      })
      res.on('end', () => { seen.complete = res.complete })
      res.on('error', (err: NodeJS.ErrnoException) => { seen.error ??= err.code ?? err.message })
      res.on('close', settle)
    })
    req.on('close', () => { if (seen.status === null) settle() })
    if (o.body === undefined) req.end()
    else {
      o.body(req).catch((err: Error) => {
        seen.error ??= err.message
      })
    }
  })
}

/** Sends one probe request: over HTTP/1.1 (exchange) or HTTP/2 (exchangeH2). */
export type Send = (o: ExchangeOptions) => Promise<Seen>

/** A small JSON GET (the handshake, the target's `seen` record); null when it fails. */
export async function getJson (send: Send, url: URL, deadlineMs: number): Promise<{ status: number, json: unknown, seen: Seen } | null> {
  const seen = await send({ url, method: 'GET', agent: false, deadlineMs })
  if (seen.status === null || !seen.complete) return null
  try {
    return { status: seen.status, json: JSON.parse(seen.body), seen }
  } catch {
    return { status: seen.status, json: null, seen }
  }
}
