// node:http2 clients for the HTTP/2 tests: one stream's whole story, including how it ended
// (a clean END_STREAM, or a reset and its code).
import http2 from 'node:http2'

export interface H2Answer {
  status: number
  headers: http2.IncomingHttpHeaders
  body: string
  /** END_STREAM arrived: the response is complete. */
  ended: boolean
  /** RST_STREAM code when the stream was reset (0 = NO_ERROR); null when it ended cleanly. */
  rstCode: number | null
  /** Every data frame, with its arrival time. */
  chunks: Array<{ at: number, text: string }>
}

export interface H2RequestOptions {
  headers?: Record<string, string>
  body?: string | Buffer
  /** Called on the open stream, with the chunks so far each time one arrives. */
  onData?: (stream: http2.ClientHttp2Stream, chunk: string) => void
}

/** Sends one request on a session and resolves when its stream closes, however it closed. */
export function h2Request (session: http2.ClientHttp2Session, path: string, options: H2RequestOptions = {}): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const method = options.body === undefined ? 'GET' : 'POST'
    const stream = session.request({ ':method': method, ':path': path, ...options.headers }, { endStream: options.body === undefined })
    if (options.body !== undefined) stream.end(options.body)
    let status = 0
    let headers: http2.IncomingHttpHeaders = {}
    let ended = false
    const chunks: H2Answer['chunks'] = []
    stream.on('response', (h) => { headers = h; status = Number(h[':status']) })
    stream.setEncoding('utf8')
    stream.on('data', (text: string) => {
      chunks.push({ at: performance.now(), text })
      options.onData?.(stream, text)
    })
    stream.on('end', () => { ended = true })
    stream.on('error', () => {})
    stream.on('close', () => {
      resolve({ status, headers, body: chunks.map((c) => c.text).join(''), ended, rstCode: ended && stream.rstCode === http2.constants.NGHTTP2_NO_ERROR ? null : stream.rstCode, chunks })
    })
    stream.on('timeout', () => reject(new Error('stream timeout')))
  })
}

/** A session to a gateway listener: `https://…` (TLS, trusting `ca`) or `http://…` (h2c). */
export function h2Connect (url: string, ca?: Buffer): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url, ca === undefined ? {} : { ca })
    session.once('connect', () => resolve(session))
    session.once('error', reject)
  })
}
