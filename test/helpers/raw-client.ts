// The one raw HTTP/1.1 client of the tests: exact bytes out, every byte in with its arrival time,
// so a test sees how a response ended (a clean end or a cut), can stop reading (a stuck client),
// read responses one at a time on a kept-alive connection, or wait for what it expects. It keeps
// every byte, so a second response written into a first one shows (statusLines).
import net from 'node:net'

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

/** Raw request bytes; in a list, a function is awaited before the parts after it are written. */
export type RawRequest = string | Buffer | Array<string | Buffer | (() => Promise<unknown>)>

export class RawClient {
  readonly socket: net.Socket
  /** Every data event, with its arrival time (performance.now()). */
  readonly arrivals: Array<{ at: number, bytes: number }> = []
  readonly connected: Promise<void>
  /** Resolves when the peer ended or reset the connection (or it was destroyed). */
  readonly closed: Promise<void>
  ended = false
  sentAt = 0
  closedAt = 0
  /** What was received, as chunks (joined on demand: a long stream must not be copied per chunk). */
  readonly #chunks: Buffer[] = []
  #joined: Buffer | null = null
  /** A stuck client counts its body bytes and keeps none. */
  #discarded = 0
  /** `response()` moves this past what it returned. */
  #read = 0
  readonly #waiters = new Set<() => void>()

  /**
   * `pauseAfterHead`: a stuck client. `allowHalfOpen`: keep writing after the peer's FIN (a client
   * still sending its body after an early answer).
   */
  constructor (url: string, options: { pauseAfterHead?: boolean, allowHalfOpen?: boolean } = {}) {
    const { hostname, port } = new URL(url)
    this.socket = net.connect({ port: Number(port), host: hostname, allowHalfOpen: options.allowHalfOpen ?? false })
    // A reset after the data is also an end: what was read so far is the answer.
    this.socket.on('error', () => {})
    this.connected = new Promise((resolve) => this.socket.once('connect', () => resolve()))
    let headSeen = false
    this.socket.on('data', (chunk: Buffer) => {
      this.arrivals.push({ at: performance.now(), bytes: chunk.length })
      if (headSeen && options.pauseAfterHead === true) {
        this.#discarded += chunk.length
        return
      }
      this.#chunks.push(chunk)
      this.#joined = null
      // A stuck client: it reads the head, then nothing (the kernel buffers fill) until resume().
      if (options.pauseAfterHead === true && this.#received.includes('\r\n\r\n')) {
        headSeen = true
        this.socket.pause()
      }
      this.#wake()
    })
    this.closed = new Promise((resolve) => this.socket.once('close', () => {
      this.ended = true
      this.closedAt = performance.now()
      this.#wake()
      resolve()
    }))
  }

  #wake (): void { for (const check of this.#waiters) check() }

  get #received (): Buffer {
    this.#joined ??= Buffer.concat(this.#chunks)
    return this.#joined
  }

  /** Bytes received and not yet returned by response(). */
  get buffered (): Buffer { return this.#received.subarray(this.#read) }

  /** Everything received, as text. */
  text (): string { return this.#received.toString('latin1') }

  /** Body bytes received after the first response head. */
  bodyBytes (): number {
    const end = this.#received.indexOf('\r\n\r\n')
    return end === -1 ? 0 : this.#received.length - end - 4 + this.#discarded
  }

  /** Writes the request once connected; a function part is awaited before the parts after it. */
  async send (request: RawRequest): Promise<void> {
    await this.connected
    this.sentAt = performance.now()
    for (const part of Array.isArray(request) ? request : [request]) {
      if (typeof part === 'function') await part()
      else if (!this.socket.destroyed) this.socket.write(part)
    }
  }

  /** Resolves once what was received satisfies `done`; rejects if the connection ends first, or after timeoutMs. */
  until (done: (received: Buffer) => boolean, timeoutMs = 5000): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (done(this.buffered)) finish(() => resolve(this.buffered))
        else if (this.ended) finish(() => reject(new Error(`the connection closed first; received ${JSON.stringify(this.text().slice(0, 500))}`)))
      }
      const timer = setTimeout(() => finish(() => reject(new Error(`not received within ${timeoutMs} ms; received ${JSON.stringify(this.text().slice(0, 500))}`))), timeoutMs)
      const finish = (settle: () => void): void => {
        clearTimeout(timer)
        this.#waiters.delete(check)
        settle()
      }
      this.#waiters.add(check)
      check()
    })
  }

  /** Resolves with everything received, as text, once it matches `pattern`. */
  async waitFor (pattern: RegExp, timeoutMs = 5000): Promise<string> {
    await this.until(() => pattern.test(this.text()), timeoutMs)
    return this.text()
  }

  /** The response head, once it arrived. */
  async head (timeoutMs = 5000): Promise<{ status: number, headers: Record<string, string> }> {
    const received = await this.until((b) => b.includes('\r\n\r\n'), timeoutMs)
    const { status, headers } = parseRawResponse(received)
    return { status, headers }
  }

  /** The next complete response with a content-length, on a kept-alive connection. */
  async response (timeoutMs = 5000): Promise<{ status: number, headers: Record<string, string>, body: string }> {
    const complete = (b: Buffer): boolean => {
      const end = b.indexOf('\r\n\r\n')
      return end !== -1 && b.length - end - 4 >= Number(parseRawResponse(b).headers['content-length'])
    }
    const received = await this.until(complete, timeoutMs)
    const parsed = parseRawResponse(received)
    const length = Number(parsed.headers['content-length'])
    this.#read += received.indexOf('\r\n\r\n') + 4 + length
    return { status: parsed.status, headers: parsed.headers, body: parsed.body.subarray(0, length).toString() }
  }

  /** Everything until the peer closes, as one response: complete, or cut where it was cut. */
  async untilClosed (timeoutMs = 10_000): Promise<RawResponse> {
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        this.socket.destroy()
        reject(new Error(`the connection was still open after ${timeoutMs} ms; received: ${this.text().slice(0, 2000)}`))
      }, timeoutMs)
    })
    try {
      await Promise.race([this.closed, timedOut])
    } finally {
      clearTimeout(timer)
    }
    return { ...parseRawResponse(this.#received), arrivals: this.arrivals, sentAt: this.sentAt, closedAt: this.closedAt }
  }
}

/** The status lines in what a client received: more than one on a connection that carried one request is a smuggled response. */
export function statusLines (text: string): string[] {
  return text.match(/HTTP\/1\.1 \d{3}[^\r\n]*/g) ?? []
}
