// SSE heartbeats (routes[].sse.heartbeat): while an event stream is silent, a comment line goes
// downstream so that the idle timers of outer load balancers (60 s on AWS ALB, 600 s on GCLB)
// do not cut a healthy stream whose upstream is thinking. Two rules make it safe:
// - Only at an event boundary. The HTML standard's event stream parser ("Interpreting an event
//   stream") dispatches an event at a blank line; a comment written inside an event would be read as part of it, or
//   split it. So a heartbeat goes out only when the bytes forwarded so far end with a blank line.
// - Downstream only. A heartbeat is not upstream activity: streamIdle keeps running (the upstream
//   is still silent), and bytesOut in the access line counts the upstream's bytes only.
import type { Writable } from 'node:stream'

/** The comment sent; a line starting with a colon is ignored by every SSE client. */
export const HEARTBEAT = Buffer.from(': keepalive\n\n')

const CR = 13
const LF = 10

/**
 * Whether a byte stream, fed chunk by chunk, ends at an SSE event boundary: two line ends in a
 * row, where a line end is CRLF, LF or CR (HTML, "Parsing an event stream"). The empty stream is at a boundary.
 */
export class EventBoundary {
  /** The trailing line-end bytes seen so far (at most 4: two CRLFs). */
  #tail: number[] = []
  #atBoundary = true

  get atBoundary (): boolean { return this.#atBoundary }

  push (chunk: Uint8Array): void {
    if (chunk.length === 0) return
    let start = chunk.length
    while (start > 0 && (chunk[start - 1] === CR || chunk[start - 1] === LF)) start--
    // A chunk that is all line ends continues the tail before it (a CRLF may straddle chunks).
    const tail = start === 0 ? [...this.#tail, ...chunk] : [...chunk.subarray(start)]
    this.#tail = tail.slice(-4)
    this.#atBoundary = lineEnds(this.#tail) >= 2
  }
}

/** Line ends at the end of `bytes` (all CR/LF), counted from the end: CRLF counts once. */
function lineEnds (bytes: number[]): number {
  let count = 0
  let i = bytes.length - 1
  while (i >= 0) {
    i -= bytes[i] === LF && i > 0 && bytes[i - 1] === CR ? 2 : 1
    count++
  }
  return count
}

/** The part of a response a heartbeat writes to (ServerResponse and Http2ServerResponse both fit). */
export type HeartbeatSink = Pick<Writable, 'write' | 'writableLength' | 'writableHighWaterMark' | 'writableEnded' | 'destroyed'>

/**
 * One timer per stream, refresh()ed by every forwarded chunk (STYLE.md §1.4). When it fires at a
 * boundary, a heartbeat is written and the timer re-armed, so a long silence gets one every
 * interval. Inside an event it stays quiet until the event's end arrives, which re-arms it.
 */
export class Heartbeat {
  readonly #boundary = new EventBoundary()
  readonly #timer: NodeJS.Timeout
  #stopped = false

  constructor (intervalMs: number, sink: HeartbeatSink, sent: () => void) {
    this.#timer = setTimeout(() => {
      if (this.#stopped || !this.#boundary.atBoundary) return
      // A write after end() throws ERR_STREAM_WRITE_AFTER_END (HTTP/2: resets a finished stream).
      if (sink.writableEnded || sink.destroyed) return
      // A client that is not reading (backpressure) needs no keep-alive bytes queued behind the
      // ones it has not taken: try again an interval later.
      if (sink.writableLength < sink.writableHighWaterMark) {
        sink.write(HEARTBEAT)
        sent()
      }
      this.#timer.refresh()
    }, intervalMs)
  }

  /** A chunk of the upstream's body went downstream: the stream is not silent. */
  forwarded (chunk: Uint8Array): void {
    if (this.#stopped) return
    this.#boundary.push(chunk)
    this.#timer.refresh()
  }

  stop (): void {
    this.#stopped = true
    clearTimeout(this.#timer)
  }
}
