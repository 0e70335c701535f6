// Prometheus metrics (DESIGN.md §8), on their own registry. Label values come from config names
// and the outcome vocabulary, never from raw request paths, so cardinality stays bounded.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import { TalliedHistogram, type HistogramSeries } from './tallied-histogram.ts'
import type { AccessRecord } from './log.ts'
import type { RequestMeasures } from './headroom.ts'
import type { GenAiMetrics } from './genai-metrics.ts'

// prom-client's default buckets stop at 10 s: useless for streams that last minutes. These reach
// 30 minutes.
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900, 1200, 1800]

function child<K, T> (children: Map<K, T>, key: K, make: () => T): T {
  let found = children.get(key)
  if (found === undefined) {
    found = make()
    children.set(key, found)
  }
  return found
}

/**
 * A series counted per request in a plain number and handed to prom-client when the metrics are
 * read (its `collect`): prom-client hashes the label set on every inc(), even through a labelled
 * child (labels() binds inc to the same path), and allocates for it.
 */
interface Tally {
  readonly labels: Record<string, string>
  n: number
}

const newMap = <K, V>(): Map<K, V> => new Map()

// The gaps between a token stream's events are milliseconds; a reasoning model's first event can
// take many minutes. These buckets cover both: from 1 ms up to 30 minutes.
const STREAM_BUCKETS = [0.001, 0.0025, ...DURATION_BUCKETS]

export class GatewayMetrics {
  /** The OpenTelemetry GenAI figures, when telemetry.otlp is configured (set at start). */
  genai: GenAiMetrics | null = null
  readonly registry = new Registry()
  readonly #requests = new Counter({ name: 'longhaul_requests_total', help: 'Finished requests by route, upstream, outcome and status.', labelNames: ['route', 'upstream', 'outcome', 'status'], registers: [this.registry], collect: () => this.#flushRequests() })
  readonly #duration = new TalliedHistogram({ name: 'longhaul_request_duration_seconds', help: 'Request duration, arrival to last byte, by route and outcome.', labelNames: ['route', 'outcome'], buckets: DURATION_BUCKETS, registry: this.registry })
  readonly #firstByte = new TalliedHistogram({ name: 'longhaul_upstream_first_byte_seconds', help: 'Time from request arrival to the upstream\'s response headers, by route.', labelNames: ['route'], buckets: DURATION_BUCKETS, registry: this.registry })
  readonly #longestSilence = new TalliedHistogram({ name: 'longhaul_stream_longest_silence_seconds', help: 'The longest silence between response body chunks of each finished response, by route (against streamIdle).', labelNames: ['route'], buckets: DURATION_BUCKETS, registry: this.registry })
  readonly #uploadSilence = new TalliedHistogram({ name: 'longhaul_upload_longest_silence_seconds', help: 'The longest wait for a request body chunk of each finished upload, by route (against downstream.bodyIdleTimeout).', labelNames: ['route'], buckets: DURATION_BUCKETS, registry: this.registry })
  readonly #inflight = new Gauge({ name: 'longhaul_inflight_requests', help: 'Requests in flight, by route.', labelNames: ['route'], registers: [this.registry], collect: () => { for (const t of this.#inflightTallies.values()) this.#inflight.set(t.labels, t.n) } })
  readonly retries = new Counter({ name: 'longhaul_retries_total', help: 'Retried upstream attempts, by route and reason.', labelNames: ['route', 'reason'], registers: [this.registry] })
  // With workers, /metrics adds up every worker's series (prom-client's cluster aggregation, 'sum' by
  // default); the gauges below say how theirs combine instead. Each worker checks endpoints itself:
  // an endpoint is up when every worker has it in rotation.
  readonly endpointUp = new Gauge({ name: 'longhaul_upstream_endpoint_up', help: '1 when an upstream endpoint is in rotation, 0 when it is not.', labelNames: ['upstream', 'endpoint'], registers: [this.registry], aggregator: 'min' })
  readonly queueDepth = new Gauge({ name: 'longhaul_upstream_queue_depth', help: 'Requests waiting for an admission slot (limits) or for a connection (maxConnectionsPerEndpoint), by upstream.', labelNames: ['upstream'], registers: [this.registry] })
  // With workers, the primary validates and counts reloads (a file it rejects never reaches a worker).
  readonly #reloads = new Counter({ name: 'longhaul_config_reloads_total', help: 'Config reloads by result (ok, error).', labelNames: ['result'], registers: [this.registry], aggregator: 'omit' })
  readonly #heartbeats = new Counter({ name: 'longhaul_sse_heartbeats_total', help: 'SSE heartbeat comments sent downstream while an upstream stream was silent, by route.', labelNames: ['route'], registers: [this.registry] })
  readonly #floodGoaways = new Counter({ name: 'longhaul_http2_flood_goaways_total', help: 'HTTP/2 connections closed with GOAWAY ENHANCE_YOUR_CALM for resetting streams faster than downstream.resetFlood allows.', registers: [this.registry] })
  readonly #firstEvent = new TalliedHistogram({ name: 'longhaul_stream_first_event_seconds', help: 'Time from the upstream\'s response headers to the first event that carries an answer (time to first token), by route; routes with sse.metrics only.', labelNames: ['route'], buckets: STREAM_BUCKETS, registry: this.registry })
  readonly #eventGap = new TalliedHistogram({ name: 'longhaul_stream_event_gap_seconds', help: 'Silence between two answer events of an event stream, by route; routes with sse.metrics only.', labelNames: ['route'], buckets: STREAM_BUCKETS, registry: this.registry })
  readonly #tokens = new Counter({ name: 'longhaul_stream_tokens_total', help: 'Tokens that event streams reported in their usage (OpenAI usage, Anthropic message_start and message_delta), by route and kind (input, output); routes with sse.metrics only.', labelNames: ['route', 'kind'], registers: [this.registry] })
  readonly #clientRetries = new Counter({ name: 'longhaul_client_retries_total', help: 'Requests that a client sent again after an earlier try failed (X-Stainless-Retry-Count above 0, as the OpenAI and Anthropic SDKs send it), by route.', labelNames: ['route'], registers: [this.registry] })
  readonly #draining = new Gauge({ name: 'longhaul_draining', help: '1 while the gateway drains for shutdown.', registers: [this.registry], aggregator: 'max' })

  // Counted per request as Tallies, read by prom-client's collect; the histograms' series, kept
  // (tallied-histogram.ts). Label values are config names, outcomes and statuses, so these maps
  // stay small.
  /** Finished requests by route, upstream, outcome and status: counted since the last read. */
  readonly #requestTallies = new Map<string, Map<string, Map<string, Map<number, Tally>>>>()
  readonly #requestList: Tally[] = []
  /** Requests in flight by route. */
  readonly #inflightTallies = new Map<string, Tally>()
  readonly #durationSeries = new Map<string, Map<string, HistogramSeries>>()
  readonly #firstByteSeries = new Map<string, HistogramSeries>()
  readonly #longestSilenceSeries = new Map<string, HistogramSeries>()
  readonly #uploadSilenceSeries = new Map<string, HistogramSeries>()
  readonly #firstEventSeries = new Map<string, HistogramSeries>()
  readonly #eventGapSeries = new Map<string, HistogramSeries>()

  constructor () {
    collectDefaultMetrics({ register: this.registry })
    this.#reloads.inc({ result: 'ok' }, 0)
    this.#reloads.inc({ result: 'error' }, 0)
    this.#draining.set(0)
  }

  /** One finished request: counted once, whatever its outcome. */
  finished (record: AccessRecord): void {
    const route = record.route ?? ''
    const upstream = record.upstream ?? ''
    const outcome = record.outcome
    const status = record.status
    const byUpstream = child(this.#requestTallies, route, newMap<string, Map<string, Map<number, Tally>>>)
    const byStatus = child(child(byUpstream, upstream, newMap<string, Map<number, Tally>>), outcome, newMap<number, Tally>)
    let tally = byStatus.get(status)
    if (tally === undefined) {
      tally = { labels: { route, upstream, outcome, status: String(status) }, n: 0 }
      byStatus.set(status, tally)
      this.#requestList.push(tally)
    }
    tally.n++
    const durations = child(this.#durationSeries, route, newMap<string, HistogramSeries>)
    let duration = durations.get(outcome)
    if (duration === undefined) durations.set(outcome, duration = this.#duration.series(route, outcome))
    duration.observe(record.durationMs / 1000)
  }

  #flushRequests (): void {
    for (const tally of this.#requestList) {
      if (tally.n === 0) continue
      this.#requests.inc(tally.labels, tally.n)
      tally.n = 0
    }
  }

  firstByte (route: string, ms: number): void {
    child(this.#firstByteSeries, route, () => this.#firstByte.series(route)).observe(ms / 1000)
  }

  /** A finished request's longest silences (the other headroom figures are already measured here). */
  measured (route: string, m: RequestMeasures): void {
    if (m.streamSilence !== null) child(this.#longestSilenceSeries, route, () => this.#longestSilence.series(route)).observe(m.streamSilence / 1000)
    if (m.uploadSilence !== null) child(this.#uploadSilenceSeries, route, () => this.#uploadSilence.series(route)).observe(m.uploadSilence / 1000)
  }

  inflight (route: string, delta: 1 | -1): void {
    let tally = this.#inflightTallies.get(route)
    if (tally === undefined) this.#inflightTallies.set(route, tally = { labels: { route }, n: 0 })
    tally.n += delta
  }

  streamFirstEvent (route: string, ms: number, sinceArrivalMs: number): void {
    this.genai?.timeToFirstToken(route, sinceArrivalMs)
    child(this.#firstEventSeries, route, () => this.#firstEvent.series(route)).observe(ms / 1000)
  }

  /** Per event of a metered stream: the labelled child, found by one string key. */
  streamEventGap (route: string, ms: number): void {
    child(this.#eventGapSeries, route, () => this.#eventGap.series(route)).observe(ms / 1000)
  }

  /** The usage a stream reported, counted once when it ends. */
  streamTokens (route: string, usage: { input: number | null, output: number | null }): void {
    this.genai?.tokenUsage(route, usage)
    if (usage.input !== null) this.#tokens.inc({ route, kind: 'input' }, usage.input)
    if (usage.output !== null) this.#tokens.inc({ route, kind: 'output' }, usage.output)
  }

  clientRetry (route: string): void {
    this.#clientRetries.inc({ route })
  }

  heartbeat (route: string): void {
    this.#heartbeats.inc({ route })
  }

  reloaded (ok: boolean): void {
    this.#reloads.inc({ result: ok ? 'ok' : 'error' })
  }

  floodGoaway (): void {
    this.#floodGoaways.inc()
  }

  draining (on: boolean): void {
    this.#draining.set(on ? 1 : 0)
  }

  /** Endpoints in rotation for the current upstreams; series of endpoints that left are removed. */
  setEndpoints (upstreams: ReadonlyMap<string, { endpoints: readonly { url: string }[] }>): void {
    this.endpointUp.reset()
    this.queueDepth.reset()
    for (const [name, upstream] of upstreams) {
      this.queueDepth.set({ upstream: name }, 0)
      for (const e of upstream.endpoints) this.endpointUp.set({ upstream: name, endpoint: e.url }, 1)
    }
  }

  text (): Promise<string> {
    return this.registry.metrics()
  }
}

/** The primary's own series when workers run (DESIGN.md §8): added to the workers' aggregated ones. */
export class WorkerPoolMetrics {
  readonly registry = new Registry()
  readonly #reloads = new Counter({ name: 'longhaul_config_reloads_total', help: 'Config reloads by result (ok, error).', labelNames: ['result'], registers: [this.registry] })
  readonly workers = new Gauge({ name: 'longhaul_workers', help: 'Worker processes serving.', registers: [this.registry] })
  readonly restarts = new Counter({ name: 'longhaul_worker_restarts_total', help: 'Worker processes that ended outside a drain and were started again.', registers: [this.registry] })
  readonly lostRequests = new Counter({ name: 'longhaul_worker_lost_requests_total', help: 'Requests in flight in a worker process when it ended outside a drain (as last reported by it, at most a second old).', registers: [this.registry] })

  constructor () {
    this.#reloads.inc({ result: 'ok' }, 0)
    this.#reloads.inc({ result: 'error' }, 0)
  }

  reloaded (ok: boolean): void {
    this.#reloads.inc({ result: ok ? 'ok' : 'error' })
  }

  text (): Promise<string> {
    return this.registry.metrics()
  }
}
