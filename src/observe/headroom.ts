// Timeout headroom: what each route's traffic really does against each of its limits. One
// quantile sketch per route and measure (DDSketch, 1 % relative accuracy, memory bounded by the
// range of values, not their number), fed once per finished request, read by /status, the admin
// page and `longhaul headroom`.
import { DDSketch } from '@datadog/sketches-js'
import type { RuntimeConfig, RouteConfig } from '../config/runtime.ts'
import { formatDuration } from '../config/units.ts'

/** What a request's clocks measured, in ms; null where the request had no such phase. */
export interface RequestMeasures {
  /** Arrival to response headers. */
  readonly firstByte: number | null
  /** Longest silence between response body chunks, from the headers on (the client's backpressure excluded). */
  readonly streamSilence: number | null
  /** Arrival to the last response byte, for requests that completed. */
  readonly total: number | null
  /** Longest silence between request body chunks while the gateway waited for them. */
  readonly uploadSilence: number | null
}

export type Measure = keyof RequestMeasures

/** Each measure against the limit it informs, and the outcome that limit ends a request with. */
export const MEASURES: ReadonlyArray<{ measure: Measure, limit: string, outcome: string, label: string }> = [
  { measure: 'firstByte', limit: 'firstByte', outcome: 'first_byte_timeout', label: 'time to first byte' },
  { measure: 'streamSilence', limit: 'streamIdle', outcome: 'stream_idle_timeout', label: 'longest silence in a stream' },
  { measure: 'total', limit: 'request', outcome: 'request_timeout', label: 'total duration' },
  { measure: 'uploadSilence', limit: 'downstream.bodyIdleTimeout', outcome: 'request_body_timeout', label: 'longest silence in an upload' }
]

/** Above this share of its limit, observed traffic is too close to the limit. */
const TIGHT = 0.8
/** A suggested limit leaves this much room above the observed maximum. */
const ROOM = 1.5

const NICE_MS = [1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 450, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200].map((s) => s * 1000)

/** The next round duration at or above `ms` (1s, 2s, 5s, 10s … 2h), so suggestions read like config. */
export function roundUpDuration (ms: number): number {
  for (const nice of NICE_MS) if (nice >= ms) return nice
  return Math.ceil(ms / 3_600_000) * 3_600_000
}

/** The limit a measure is held against on a route. */
export function limitOf (route: RouteConfig, config: RuntimeConfig, measure: Measure): { ms: number | null, source: string } {
  const t = route.timeouts
  switch (measure) {
    case 'firstByte': return t.firstByte
    case 'streamSilence': return t.streamIdle
    case 'total': return t.request
    case 'uploadSilence': return { ms: config.downstream.bodyIdleTimeoutMs, source: 'downstream' }
  }
}

/** A hop in front of the gateway that cuts first when a measure passes `ms` (from a chain file). */
export interface FrontLimit { readonly hop: string, readonly setting: string, readonly ms: number }

export interface HeadroomRow {
  route: string
  measure: Measure
  limit: string
  label: string
  configuredMs: number | null
  source: string
  count: number
  p50Ms: number | null
  p99Ms: number | null
  maxMs: number | null
  /** configured - max; null when unbounded or no data. */
  headroomMs: number | null
  verdict: 'no data' | 'ok' | 'tight' | 'exceeded' | 'unbounded'
  suggestedMs: number | null
  reason: string
}

/** What GET /headroom answers. */
export interface HeadroomDocument {
  readonly rows: HeadroomRow[]
  /** Per route: the SSE heartbeat interval, which hides silences from the hops in front. */
  readonly heartbeatMs: Readonly<Record<string, number | null>>
}

/** Quantiles within 1 % of the true value. */
const RELATIVE_ACCURACY = 0.01

class RouteSketches {
  readonly sketches: Record<Measure, DDSketch> = {
    firstByte: new DDSketch({ relativeAccuracy: RELATIVE_ACCURACY }),
    streamSilence: new DDSketch({ relativeAccuracy: RELATIVE_ACCURACY }),
    total: new DDSketch({ relativeAccuracy: RELATIVE_ACCURACY }),
    uploadSilence: new DDSketch({ relativeAccuracy: RELATIVE_ACCURACY })
  }
}

/** One sketch as plain data: its positive store and summary (every measure is ≥ 0). */
interface SketchData {
  readonly store: { readonly bins: number[], readonly count: number, readonly minKey: number, readonly maxKey: number, readonly offset: number }
  readonly zeroCount: number
  readonly count: number
  readonly sum: number
  readonly min: number
  readonly max: number
}

/** A process's sketches, to merge in another (the primary of a worker pool). */
export type HeadroomExport = Record<string, Partial<Record<Measure, SketchData>>>

export class Headroom {
  readonly #routes = new Map<string, RouteSketches>()

  /** The sketches as plain data (for the IPC channel to the primary). */
  export (): HeadroomExport {
    const out: HeadroomExport = {}
    for (const [route, { sketches }] of this.#routes) {
      const row: HeadroomExport[string] = {}
      for (const measure of Object.keys(sketches) as Measure[]) {
        const k = sketches[measure]
        if (k.count === 0) continue
        const { bins, count, minKey, maxKey, offset } = k.store
        row[measure] = { store: { bins, count, minKey, maxKey, offset }, zeroCount: k.zeroCount, count: k.count, sum: k.sum, min: k.min, max: k.max }
      }
      out[route] = row
    }
    return out
  }

  /** Several processes' sketches as one: DDSketches merge without losing their accuracy. */
  static merged (exports: readonly HeadroomExport[]): Headroom {
    const headroom = new Headroom()
    for (const part of exports) {
      for (const [route, row] of Object.entries(part)) {
        let mine = headroom.#routes.get(route)
        if (mine === undefined) headroom.#routes.set(route, mine = new RouteSketches())
        for (const [measure, data] of Object.entries(row) as Array<[Measure, SketchData]>) {
          const other = new DDSketch({ relativeAccuracy: RELATIVE_ACCURACY })
          Object.assign(other.store, data.store)
          Object.assign(other, { zeroCount: data.zeroCount, count: data.count, sum: data.sum, min: data.min, max: data.max })
          mine.sketches[measure].merge(other)
        }
      }
    }
    return headroom
  }

  /** One finished request's measures (ms) on a route. */
  observe (route: string, m: RequestMeasures): void {
    let sketches = this.#routes.get(route)
    if (sketches === undefined) this.#routes.set(route, sketches = new RouteSketches())
    const s = sketches.sketches
    // DDSketch maps 0 to its zero bucket; a sub-millisecond value is fine as it is.
    if (m.firstByte !== null) s.firstByte.accept(m.firstByte)
    if (m.streamSilence !== null) s.streamSilence.accept(m.streamSilence)
    if (m.total !== null) s.total.accept(m.total)
    if (m.uploadSilence !== null) s.uploadSilence.accept(m.uploadSilence)
  }

  /** Per route of the running config and per measure: the figures and a suggestion. */
  report (config: RuntimeConfig, front: (measure: Measure) => FrontLimit | null = () => null): HeadroomRow[] {
    const rows: HeadroomRow[] = []
    for (const route of config.routes) {
      const sketches = this.#routes.get(route.name)?.sketches
      for (const { measure, limit, outcome, label } of MEASURES) {
        const configured = limitOf(route, config, measure)
        const sketch = sketches?.[measure]
        const count = sketch?.count ?? 0
        const figures = count === 0 || sketch === undefined
          ? { p50: null, p99: null, max: null }
          // The sketch's quantiles are within 1 %: clamp them to the exact max it also keeps.
          : { p50: Math.round(Math.min(sketch.getValueAtQuantile(0.5), sketch.max)), p99: Math.round(Math.min(sketch.getValueAtQuantile(0.99), sketch.max)), max: Math.round(sketch.max) }
        rows.push({
          route: route.name,
          measure,
          limit,
          label,
          configuredMs: configured.ms,
          source: configured.source,
          count,
          p50Ms: figures.p50,
          p99Ms: figures.p99,
          maxMs: figures.max,
          headroomMs: configured.ms === null || figures.max === null ? null : configured.ms - figures.max,
          ...suggest(configured.ms, figures.p99, figures.max, limit, outcome, front(measure))
        })
      }
    }
    return rows
  }
}

/** An observed figure as people read it: 850ms, 41.2s, 3m05s. Limits keep config's own notation. */
export function humanMs (ms: number | null): string {
  if (ms === null) return '-'
  if (ms < 1000) return `${Math.round(ms)}ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`
  const s = Math.round(ms / 1000)
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
}

/** "lb's proxy_read_timeout (60s)"; a setting written in a chain file already names its value. */
function frontText (front: FrontLimit): string {
  const value = formatDuration(front.ms)
  return `${front.hop}'s ${front.setting}${front.setting.includes(value) ? '' : ` (${value})`}`
}

/** The verdict and suggestion for one limit, never above a front hop that would cut first. */
export function suggest (configured: number | null, p99: number | null, max: number | null, limit: string, outcome: string, front: FrontLimit | null): Pick<HeadroomRow, 'verdict' | 'suggestedMs' | 'reason'> {
  if (max === null || p99 === null) return { verdict: 'no data', suggestedMs: null, reason: 'no request has measured this yet' }
  let wanted = roundUpDuration(max * ROOM)
  let capNote = ''
  if (front !== null && wanted >= front.ms) {
    // A limit at or above the front hop's would never fire: the hop in front cuts first.
    wanted = Math.max(1000, front.ms - Math.min(front.ms * 0.1, 5000))
    capNote = `; kept below ${frontText(front)}, which cuts first: raise that too`
  }
  if (configured === null) {
    return { verdict: 'unbounded', suggestedMs: wanted, reason: `no limit: a stuck request waits without a bound; observed max ${humanMs(max)}, ${limit} ${formatDuration(wanted)} would leave room${capNote}` }
  }
  if (max >= configured) {
    return { verdict: 'exceeded', suggestedMs: Math.max(wanted, configured), reason: `observed max ${humanMs(max)} reached ${limit} ${formatDuration(configured)}: requests were cut as ${outcome}; raise it to ${formatDuration(Math.max(wanted, configured))} if they were healthy${capNote}` }
  }
  if (max >= configured * TIGHT) {
    return { verdict: 'tight', suggestedMs: wanted, reason: `observed max ${humanMs(max)} is ${Math.round(max / configured * 100)}% of ${limit} ${formatDuration(configured)}: raise it to ${formatDuration(wanted)}, or expect ${outcome} soon${capNote}` }
  }
  if (front !== null && configured >= front.ms) {
    return { verdict: 'ok', suggestedMs: wanted, reason: `traffic fits (p99 ${humanMs(p99)}), but ${frontText(front)} cuts before ${limit} ${formatDuration(configured)} can fire: lower ${limit} below it so longhaul names the cut` }
  }
  return { verdict: 'ok', suggestedMs: null, reason: `fine: observed p99 ${humanMs(p99)}, max ${humanMs(max)} against ${limit} ${formatDuration(configured)}` }
}
