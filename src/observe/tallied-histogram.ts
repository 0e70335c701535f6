// A Prometheus histogram observed in plain numbers and read through prom-client's registry.
// prom-client's observe(), even through a labelled child, checks the label names, hashes the label
// set and looks the series up on every call (about 0.5 µs; three per request). Here a series is an
// object the caller keeps: observing is a bucket search and three additions. The export is the
// shape prom-client's own Histogram gives its registry (get(): `le` first, then the series'
// labels), so /metrics, the workers' aggregation and the text format are prom-client's.
import type { Metric, Registry } from 'prom-client'

/** One exported sample, as prom-client's Histogram hands it to its registry. */
interface Sample {
  readonly labels: Readonly<Record<string, string | number>>
  readonly value: number
  readonly metricName: string
}

/** What the registry reads from a metric (prom-client's MetricObjectWithValues, the fields it uses). */
interface Exported {
  readonly name: string
  readonly help: string
  readonly type: 'histogram'
  readonly aggregator: 'sum'
  readonly values: Sample[]
}

/** One label set of a histogram: its bucket counts (not cumulative; the last is +Inf), sum and count. */
export class HistogramSeries {
  readonly labels: Readonly<Record<string, string>>
  readonly #bounds: readonly number[]
  readonly counts: Float64Array
  sum = 0
  count = 0

  constructor (labels: Readonly<Record<string, string>>, bounds: readonly number[]) {
    this.labels = labels
    this.#bounds = bounds
    this.counts = new Float64Array(bounds.length + 1)
  }

  observe (value: number): void {
    // prom-client throws on NaN and infinities; a metric must not end a request's path (our
    // measures are differences of clock readings, finite by construction).
    if (!Number.isFinite(value)) return
    const bounds = this.#bounds
    let i = 0
    while (i < bounds.length && value > bounds[i]!) i++
    this.counts[i]!++
    this.sum += value
    this.count++
  }
}

export interface TalliedHistogramConfig {
  readonly name: string
  readonly help: string
  readonly labelNames: readonly string[]
  /** Upper bounds, ascending (+Inf is implied). */
  readonly buckets: readonly number[]
  readonly registry: Registry
}

export class TalliedHistogram {
  readonly name: string
  readonly help: string
  readonly type = 'histogram' as const
  readonly aggregator = 'sum' as const
  readonly #labelNames: readonly string[]
  readonly #bounds: readonly number[]
  /** Every series, by its label values joined (label values never hold the separator: a NUL). */
  readonly #series = new Map<string, HistogramSeries>()

  constructor (config: TalliedHistogramConfig) {
    this.name = config.name
    this.help = config.help
    this.#labelNames = config.labelNames
    this.#bounds = config.buckets
    // The registry reads any metric through get(); its type names only prom-client's own classes.
    config.registry.registerMetric(this as unknown as Metric)
  }

  /** The series of these label values (in labelNames' order), made on first use: keep it, then observe() it. */
  series (...values: string[]): HistogramSeries {
    if (values.length !== this.#labelNames.length) throw new TypeError(`${this.name} has ${this.#labelNames.length} labels, got ${values.length} values`)
    const key = values.join('\u0000')
    let found = this.#series.get(key)
    if (found === undefined) {
      const labels: Record<string, string> = {}
      this.#labelNames.forEach((name, i) => { labels[name] = values[i]! })
      found = new HistogramSeries(labels, this.#bounds)
      this.#series.set(key, found)
    }
    return found
  }

  async get (): Promise<Exported> {
    const bucket = `${this.name}_bucket`
    const values: Sample[] = []
    for (const s of this.#series.values()) {
      if (s.count === 0) continue
      let cumulative = 0
      this.#bounds.forEach((le, i) => {
        cumulative += s.counts[i]!
        values.push({ labels: { le, ...s.labels }, value: cumulative, metricName: bucket })
      })
      values.push(
        { labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: bucket },
        { labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` },
        { labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` }
      )
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }

  /** Registry.resetMetrics(): every series back to nothing observed (callers keep their series). */
  reset (): void {
    for (const s of this.#series.values()) {
      s.counts.fill(0)
      s.sum = 0
      s.count = 0
    }
  }
}
