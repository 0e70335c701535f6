// Helpers of the fault-matrix tests: a raw HTTP/1.1 exchange that shows exactly how a response
// ended (a clean chunked terminator or a cut), a socket that stops reading, SSE parsing, and the
// assertions of the error contract (DESIGN.md §4) shared by every outcome.
import net from 'node:net'
import assert from 'node:assert/strict'

export interface RawResponse {
  status: number
  /** Lower-case names; a repeated field keeps its last value. */
  headers: Record<string, string>
  /** The body, de-chunked when the response is chunked. */
  body: Buffer
  chunked: boolean
  /** The chunked terminator arrived, or the content-length was reached. */
  complete: boolean
  /** Every received data event, with its arrival time (performance.now()). */
  arrivals: Array<{ at: number, bytes: number }>
  /** When the request was written and when the socket closed (performance.now()). */
  sentAt: number
  closedAt: number
}

/** HOST and PORT of a gateway URL such as http://127.0.0.1:1234. */
export function hostPort (url: string): { host: string, port: number } {
  const u = new URL(url)
  return { host: u.hostname, port: Number(u.port) }
}

/** Raw request bytes; in a list, a function is awaited before the parts after it are written. */
export type RawRequest = string | Buffer | Array<string | Buffer | (() => Promise<unknown>)>

/**
 * Writes `request` as raw bytes and reads until the peer closes the connection, so that a cut
 * response can be told from a clean one. Ask for `Connection: close` when a complete response is
 * expected: a kept-alive connection would only end at the timeout.
 */
export function rawExchange (url: string, request: RawRequest, options: { timeoutMs?: number } = {}): Promise<RawResponse> {
  const { host, port } = hostPort(url)
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host)
    const parts: Buffer[] = []
    const arrivals: RawResponse['arrivals'] = []
    let sentAt = 0
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`the connection was still open after ${options.timeoutMs ?? 10_000} ms; received: ${Buffer.concat(parts).toString('latin1').slice(0, 2000)}`))
    }, options.timeoutMs ?? 10_000)
    socket.on('connect', () => {
      sentAt = performance.now()
      void (async () => {
        for (const part of Array.isArray(request) ? request : [request]) {
          if (typeof part === 'function') await part()
          else if (!socket.destroyed) socket.write(part)
        }
      })()
    })
    socket.on('data', (chunk: Buffer) => {
      parts.push(chunk)
      arrivals.push({ at: performance.now(), bytes: chunk.length })
    })
    // A reset (ECONNRESET) after the data is also an end: the data read so far is the answer.
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      try {
        resolve({ ...parseRawResponse(Buffer.concat(parts)), arrivals, sentAt, closedAt: performance.now() })
      } catch (err) {
        reject(err as Error)
      }
    })
  })
}

/** Parses one HTTP/1.1 response as received, possibly cut anywhere after its head. */
export function parseRawResponse (raw: Buffer): Pick<RawResponse, 'status' | 'headers' | 'body' | 'chunked' | 'complete'> {
  const headEnd = raw.indexOf('\r\n\r\n')
  if (headEnd === -1) throw new Error(`no complete response head in ${JSON.stringify(raw.toString('latin1').slice(0, 500))}`)
  const lines = raw.subarray(0, headEnd).toString('latin1').split('\r\n')
  const statusLine = /^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '')
  if (statusLine === null) throw new Error(`not an HTTP/1.1 status line: ${lines[0]}`)
  const headers: Record<string, string> = {}
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const rest = raw.subarray(headEnd + 4)
  const chunked = /chunked/i.test(headers['transfer-encoding'] ?? '')
  if (!chunked) {
    const length = headers['content-length'] === undefined ? null : Number(headers['content-length'])
    return { status: Number(statusLine[1]), headers, body: rest, chunked, complete: length !== null && rest.length >= length }
  }
  const body: Buffer[] = []
  let offset = 0
  let complete = false
  for (;;) {
    const lineEnd = rest.indexOf('\r\n', offset)
    if (lineEnd === -1) break
    const size = parseInt(rest.subarray(offset, lineEnd).toString('latin1'), 16)
    if (Number.isNaN(size)) throw new Error(`bad chunk size line at ${offset}`)
    if (size === 0) {
      // The last chunk, then (no trailers) the empty line that ends the message.
      complete = rest.indexOf('\r\n', lineEnd + 2) === lineEnd + 2
      break
    }
    const dataEnd = lineEnd + 2 + size
    if (rest.length < dataEnd + 2) {
      body.push(rest.subarray(lineEnd + 2, Math.min(dataEnd, rest.length)))
      break
    }
    body.push(rest.subarray(lineEnd + 2, dataEnd))
    offset = dataEnd + 2
  }
  return { status: Number(statusLine[1]), headers, body: Buffer.concat(body), chunked, complete }
}

export interface HeldSocket {
  socket: net.Socket
  /** Resolves with the response head (and the body bytes that came with it) once it arrived. */
  head: Promise<{ status: number, headers: Record<string, string> }>
  /** Body bytes received so far (head excluded). */
  received: () => number
  /** Resolves when the connection closed. */
  closed: Promise<void>
}

/**
 * A client that sends `request`, reads the response head and then stops reading (pause()):
 * the kernel buffers fill and the gateway's writes block, as with a slow or stuck client.
 * Calling socket.resume() reads on.
 */
export function holdingClient (url: string, request: string): HeldSocket {
  const { host, port } = hostPort(url)
  const socket = net.connect(port, host)
  socket.on('error', () => {})
  let buffered = Buffer.alloc(0)
  let bodyBytes = 0
  let headSeen = false
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  const head = new Promise<{ status: number, headers: Record<string, string> }>((resolve, reject) => {
    socket.once('close', () => { if (!headSeen) reject(new Error(`closed before a response head: ${buffered.toString('latin1').slice(0, 500)}`)) })
    socket.on('data', (chunk: Buffer) => {
      if (headSeen) {
        bodyBytes += chunk.length
        return
      }
      buffered = Buffer.concat([buffered, chunk])
      const end = buffered.indexOf('\r\n\r\n')
      if (end === -1) return
      headSeen = true
      bodyBytes = buffered.length - end - 4
      socket.pause()
      const parsed = parseRawResponse(buffered)
      resolve({ status: parsed.status, headers: parsed.headers })
    })
  })
  socket.write(request)
  return { socket, head, received: () => bodyBytes, closed }
}

export interface SseRecord {
  event: string
  data: string
  id?: string
}

/** Splits an event stream into its records (only complete ones: a cut last record is dropped). */
export function sseRecords (text: string): SseRecord[] {
  const records: SseRecord[] = []
  const blocks = text.split('\n\n')
  blocks.pop() // after the last separator: empty, or a record cut short
  for (const block of blocks) {
    const record: SseRecord = { event: 'message', data: '' }
    const data: string[] = []
    for (const line of block.split('\n')) {
      const colon = line.indexOf(':')
      const field = colon === -1 ? line : line.slice(0, colon)
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '')
      if (field === 'event') record.event = value
      else if (field === 'data') data.push(value)
      else if (field === 'id') record.id = value
    }
    record.data = data.join('\n')
    records.push(record)
  }
  return records
}

/**
 * The gateway's SSE error record (`event: error`, data `{"type":"error","error":{…}}`, the shape
 * both SDK families raise): returns its `error` member, whose `type` and `code` are the outcome.
 */
export function errorRecordData (record: SseRecord): Record<string, unknown> {
  assert.equal(record.event, 'error', `not the error record: ${JSON.stringify(record)}`)
  const data = JSON.parse(record.data) as { type: unknown, error: Record<string, unknown> }
  assert.equal(data.type, 'error', record.data)
  assert.equal(data.error.type, data.error.code, record.data)
  return data.error
}

/**
 * Node's timers count from the event loop's cached clock, which can lag the real one by a few ms
 * on a loaded machine, so a limit can fire that much before its nominal time. Late is bounded by
 * `slackMs` (the machine's load, not the gateway's timer design, sets how late).
 */
export const EARLY_MS = 5
export const LATE_MS = 400

export function assertElapsed (elapsedMs: unknown, limitMs: number, what: string, lateMs = LATE_MS): void {
  assert.equal(typeof elapsedMs, 'number', `${what}: elapsedMs is not a number: ${String(elapsedMs)}`)
  const e = elapsedMs as number
  assert.ok(e >= limitMs - EARLY_MS && e < limitMs + lateMs, `${what}: elapsed ${e} ms for a limit of ${limitMs} ms (window ${limitMs}..${limitMs + lateMs})`)
}

export interface ErrorExpectation {
  outcome: string
  status: number
  /** RFC 9209 error type of the Proxy-Status header. */
  proxyStatus: string
  /** The limit that fired, when one did. */
  limitMs?: number
  route?: string | null
  upstream?: string | null
  requestId?: string
  /** Tolerance past the limit for elapsedMs; default LATE_MS. */
  lateMs?: number
}

/**
 * The gateway-made error response (DESIGN.md §4): status, content-type, x-longhaul-error,
 * Proxy-Status naming the outcome, and the JSON body with the same code, the limit and the time
 * it took. Returns the body's `error` document.
 */
export function assertGatewayError (res: { status: number, headers: Record<string, string | string[] | undefined>, body: string }, want: ErrorExpectation): Record<string, unknown> {
  const ctx = `${want.outcome}: ${res.status} ${JSON.stringify(res.headers)} ${res.body.slice(0, 500)}`
  assert.equal(res.status, want.status, ctx)
  assert.equal(res.headers['content-type'], 'application/json', ctx)
  assert.equal(res.headers['x-longhaul-error'], want.outcome, ctx)
  const proxyStatus = String(res.headers['proxy-status'])
  const details = want.limitMs === undefined ? `${want.outcome}` : `${want.outcome} after \\d+ms`
  assert.match(proxyStatus, new RegExp(`^longhaul; error=${want.proxyStatus}; details="${details}"$`), ctx)
  const doc = (JSON.parse(res.body) as { error: Record<string, unknown> }).error
  assert.equal(doc.code, want.outcome, ctx)
  assert.equal(typeof doc.message, 'string', ctx)
  assert.equal(doc.requestId, res.headers['x-request-id'], ctx)
  if (want.requestId !== undefined) assert.equal(doc.requestId, want.requestId, ctx)
  if (want.route !== undefined) assert.equal(doc.route, want.route, ctx)
  if (want.upstream !== undefined) assert.equal(doc.upstream, want.upstream, ctx)
  if (want.limitMs === undefined) {
    assert.equal(doc.limitMs, undefined, ctx)
  } else {
    assert.equal(doc.limitMs, want.limitMs, ctx)
    assertElapsed(doc.elapsedMs, want.limitMs, want.outcome, want.lateMs)
    // Proxy-Status tells the same time as the body.
    assert.equal(proxyStatus.match(/after (\d+)ms/)?.[1], String(doc.elapsedMs), ctx)
  }
  return doc
}

/** An access line's outcome, status and limit. */
export function assertAccess (line: Record<string, unknown>, want: { outcome: string, status: number, limitMs?: number }): void {
  const ctx = JSON.stringify(line)
  assert.equal(line.outcome, want.outcome, ctx)
  assert.equal(line.status, want.status, ctx)
  assert.equal(line.limitMs, want.limitMs, ctx)
}
