// Watches a response body for the moments a token stream is made of: its first answer event
// (the end of the firstEvent wait, the first-event gate's signal) and, on routes with
// sse.metrics, the gaps between events and the usage the stream reports. Built only for a
// response that needs one of these, and it stops reading once nothing needs it any more: on a
// route that asks for none, a stream costs nothing here.
import { SseEventScanner, type StreamEvent } from './sse-events.ts'

/** The metrics a watch reports to (GatewayMetrics fits). */
export interface StreamMetricsSink {
  /** ms: from the response headers; sinceArrivalMs: from the request's arrival (time to first token). */
  streamFirstEvent (route: string, ms: number, sinceArrivalMs: number): void
  streamEventGap (route: string, ms: number): void
  streamTokens (route: string, usage: { input: number | null, output: number | null }): void
}

export interface StreamWatchOptions {
  /** The body is an SSE stream; otherwise its first byte is its first event. */
  readonly sse: boolean
  readonly route: string
  /** Report time to first event, gaps and usage here (sse.metrics); null = no metrics. */
  readonly metrics: StreamMetricsSink | null
  /** When the request arrived (the same clock as `now`), for the time to first token. */
  readonly arrivedAt?: number
  /** Tell an error record from an answer in the first event (the first-event gate). */
  readonly errors: boolean
  /** The first answer event arrived (or an error record in its place). */
  readonly onFirstEvent?: (event: StreamEvent) => void
  readonly now?: () => number
}

export class StreamWatch {
  readonly #options: StreamWatchOptions
  readonly #now: () => number
  readonly #scanner: SseEventScanner | null
  readonly #headersAt: number
  #lastEventAt: number | null = null
  /** Still reading the body: the first event is awaited, or metrics want every event. */
  #reading = true
  #ended = false

  constructor (options: StreamWatchOptions) {
    this.#options = options
    this.#now = options.now ?? performance.now.bind(performance)
    this.#headersAt = this.#now()
    this.#scanner = options.sse ? new SseEventScanner({ usage: options.metrics !== null, errors: options.errors }, (e) => this.#event(e)) : null
  }

  /** The first answer event has arrived. */
  get firstEventSeen (): boolean { return this.#lastEventAt !== null }

  /** A body chunk from the upstream, before it goes downstream. */
  chunk (chunk: Uint8Array): void {
    if (!this.#reading || chunk.length === 0) return
    if (this.#scanner !== null) this.#scanner.push(chunk)
    else if (this.#lastEventAt === null) this.#event({ answer: true, error: false, type: '' })
  }

  #event (event: StreamEvent): void {
    if (!event.answer) return
    const at = this.#now()
    const metrics = this.#options.metrics
    const route = this.#options.route
    if (this.#lastEventAt === null) {
      this.#lastEventAt = at
      metrics?.streamFirstEvent(route, at - this.#headersAt, at - (this.#options.arrivedAt ?? this.#headersAt))
      if (this.#scanner !== null) this.#scanner.errors = false
      // Without metrics (or on a plain body), nothing after the first event is of interest.
      if (metrics === null || this.#scanner === null) this.#reading = false
      this.#options.onFirstEvent?.(event)
      return
    }
    metrics?.streamEventGap(route, at - this.#lastEventAt)
    this.#lastEventAt = at
  }

  /** The response ended, however: the usage the stream reported is counted once. */
  end (): void {
    if (this.#ended) return
    this.#ended = true
    this.#reading = false
    const usage = this.#scanner?.usage
    if (this.#options.metrics !== null && usage !== undefined && (usage.input !== null || usage.output !== null)) {
      this.#options.metrics.streamTokens(this.#options.route, usage)
    }
  }
}
