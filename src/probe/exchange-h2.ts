// One probe request over HTTP/2 (`--http2`: h2 by ALPN on https://, prior knowledge on http://),
// seen as exchange.ts sees an HTTP/1.1 one. What HTTP/2 adds is how a stream ends: END_STREAM (a
// clean end) or RST_STREAM with a code; NO_ERROR on a response that is not finished is a truncation
// a client cannot tell from a real end.
import http2 from 'node:http2'
import { BODY_KEPT, KEPT_HEADERS, newSeen, settler, type ExchangeOptions, type Seen } from './exchange.ts'

/** RFC 9113 §7 error codes, by value. */
const CODES = ['NO_ERROR', 'PROTOCOL_ERROR', 'INTERNAL_ERROR', 'FLOW_CONTROL_ERROR', 'SETTINGS_TIMEOUT', 'STREAM_CLOSED', 'FRAME_SIZE_ERROR', 'REFUSED_STREAM', 'CANCEL', 'COMPRESSION_ERROR', 'CONNECT_ERROR', 'ENHANCE_YOUR_CALM', 'INADEQUATE_SECURITY', 'HTTP_1_1_REQUIRED']

export function h2CodeName (code: number): string {
  return CODES[code] ?? `0x${code.toString(16)}`
}

/** One stream on a session of its own (a probe request never shares a connection with another). */
export function exchangeH2 (o: ExchangeOptions): Promise<Seen> {
  return new Promise((resolve) => {
    const seen = newSeen()
    const session = http2.connect(o.url.origin)
    const settle = settler(seen, resolve, () => {
      clearTimeout(deadline)
      session.destroy()
    })
    const deadline = setTimeout(() => {
      seen.ending ??= 'deadline'
      seen.error ??= `no end within the probe's own deadline of ${o.deadlineMs} ms`
      settle()
    }, o.deadlineMs)
    session.on('error', (err: NodeJS.ErrnoException) => {
      seen.error ??= err.code ?? err.message
      settle()
    })
    session.on('goaway', (code: number) => { seen.error ??= `GOAWAY ${h2CodeName(code)}` })
    session.once('connect', () => {
      seen.localPort = session.socket?.localPort ?? null
    })
    const stream = session.request({ ':method': o.method, ':path': `${o.url.pathname}${o.url.search}`, 'user-agent': 'longhaul-probe/1', ...o.headers }, { endStream: o.body === undefined })
    stream.on('response', (headers) => {
      seen.headersAt = performance.now()
      seen.status = Number(headers[':status'])
      for (const name of KEPT_HEADERS) {
        const v = headers[name]
        if (v !== undefined) seen.headers[name] = Array.isArray(v) ? v.join(', ') : String(v)
      }
    })
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => {
      if (seen.body.length < BODY_KEPT) seen.body += chunk.slice(0, BODY_KEPT - seen.body.length)
      if (seen.startEventAt === null && o.startMarker !== undefined && seen.body.includes(o.startMarker)) seen.startEventAt = performance.now()
    })
    // END_STREAM: the response ended as HTTP/2 says a complete one ends.
    stream.on('end', () => { seen.complete = true })
    stream.on('error', (err: NodeJS.ErrnoException) => { seen.error ??= err.code ?? err.message })
    stream.on('close', () => {
      if (!seen.complete || stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
        seen.rstCode = stream.rstCode ?? null
        // A reset NO_ERROR before the end is as clean as an END_STREAM: no error to see.
        if (seen.rstCode === http2.constants.NGHTTP2_NO_ERROR) seen.complete = true
        else if (seen.rstCode !== null) seen.ending ??= 'rst'
      }
      settle()
    })
    if (o.body !== undefined) {
      o.body(stream as unknown as Parameters<NonNullable<ExchangeOptions['body']>>[0]).catch((err: Error) => { seen.error ??= err.message })
    }
  })
}
