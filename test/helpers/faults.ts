// Helpers of the fault-matrix tests: a raw HTTP/1.1 exchange that shows exactly how a response
// ended (a clean chunked terminator or a cut), a socket that stops reading (both on raw-client.ts),
// SSE parsing, and the assertions of the error contract (DESIGN.md §4) shared by every outcome.
import type net from 'node:net'
import assert from 'node:assert/strict'
import { RawClient, type RawRequest, type RawResponse } from './raw-client.ts'

export { parseRawResponse, type RawRequest, type RawResponse } from './raw-client.ts'

/** HOST and PORT of a gateway URL such as http://127.0.0.1:1234. */
export function hostPort (url: string): { host: string, port: number } {
  const u = new URL(url)
  return { host: u.hostname, port: Number(u.port) }
}

/**
 * Writes `request` as raw bytes and reads until the peer closes the connection, so that a cut
 * response can be told from a clean one. Ask for `Connection: close` when a complete response is
 * expected: a kept-alive connection would only end at the timeout.
 */
export function rawExchange (url: string, request: RawRequest, options: { timeoutMs?: number } = {}): Promise<RawResponse> {
  const client = new RawClient(url)
  void client.send(request)
  return client.untilClosed(options.timeoutMs)
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
  const client = new RawClient(url, { pauseAfterHead: true })
  void client.send(request)
  return { socket: client.socket, head: client.head(60_000), received: () => client.bodyBytes(), closed: client.closed }
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
