// The admin listener's live view: GET / (the page), GET /live (its updates, as server-sent
// events) and GET /headroom (the timeout headroom table). A snapshot is taken only while somebody
// watches, once per interval for all viewers, so an unwatched gateway pays nothing for it.
import type http from 'node:http'
import type { Headroom, HeadroomDocument } from '../observe/headroom.ts'
import type { RecentOutcomes } from '../observe/recent.ts'
import type { InflightRequest } from '../gateway/server.ts'
import type { RuntimeConfig } from '../config/runtime.ts'
import { LIVE_MAX_REQUESTS, renderPage, type LiveSnapshot } from './live-page.ts'

/** How often /live sends a snapshot: often enough that a silence bar visibly starts over. */
const LIVE_INTERVAL_MS = 500

/** What one gateway process offers the live view. */
export interface LiveSource {
  readonly state: string
  readonly config: RuntimeConfig
  readonly headroom: Headroom
  readonly recent: RecentOutcomes
  readonly inflight: number
  oldestInflightMs (): number
  inflightRequests (max: number): InflightRequest[]
}

/** GET /headroom: the rows, and each route's heartbeat (it hides silences from the hops in front). */
export function headroomDocument (headroom: Headroom, config: RuntimeConfig): HeadroomDocument {
  const heartbeatMs: Record<string, number | null> = {}
  for (const route of config.routes) heartbeatMs[route.name] = route.sse.heartbeatMs
  return { rows: headroom.report(config), heartbeatMs }
}

/** One process's live state. */
export function liveSnapshot (source: LiveSource, upstreams: LiveSnapshot['upstreams']): LiveSnapshot {
  return {
    at: Date.now(),
    state: source.state,
    drain: source.state === 'draining' ? { inflight: source.inflight, oldestMs: source.oldestInflightMs() } : null,
    inflight: source.inflightRequests(LIVE_MAX_REQUESTS),
    inflightCount: source.inflight,
    outcomes: { windowMinutes: source.recent.windowMinutes, counts: source.recent.counts() },
    upstreams,
    headroom: source.headroom.report(source.config)
  }
}

export class LiveView {
  readonly #snapshot: () => LiveSnapshot | Promise<LiveSnapshot>
  readonly #viewers = new Set<http.ServerResponse>()
  #timer: NodeJS.Timeout | null = null
  #busy = false

  constructor (snapshot: () => LiveSnapshot | Promise<LiveSnapshot>) {
    this.#snapshot = snapshot
  }

  async page (res: http.ServerResponse): Promise<void> {
    const body = renderPage(await this.#snapshot())
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
    res.end(body)
  }

  /** GET /live: a snapshot now, then one per interval while the viewer stays. */
  async stream (res: http.ServerResponse): Promise<void> {
    // Watched from the start: a viewer that leaves while the first snapshot is taken (a round
    // trip to every worker) is never added, and the interval stops with the last viewer.
    let gone = false
    res.once('close', () => {
      gone = true
      this.#viewers.delete(res)
      if (this.#viewers.size === 0 && this.#timer !== null) {
        clearInterval(this.#timer)
        this.#timer = null
      }
    })
    const first = frame(await this.#snapshot())
    if (gone) return
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', 'x-accel-buffering': 'no' })
    res.write(first)
    this.#viewers.add(res)
    if (this.#timer === null) {
      this.#timer = setInterval(() => { void this.#broadcast() }, LIVE_INTERVAL_MS)
      this.#timer.unref()
    }
  }

  async #broadcast (): Promise<void> {
    // One snapshot at a time: with workers it is a round trip to each of them.
    if (this.#busy) return
    this.#busy = true
    try {
      const text = frame(await this.#snapshot())
      // A viewer that does not keep up gets no backlog: it skips snapshots until it drains.
      for (const res of this.#viewers) if (!res.writableNeedDrain) res.write(text)
    } catch {
      // A snapshot that failed (a worker gone mid-question) is skipped; the next one follows.
    } finally {
      this.#busy = false
    }
  }
}

function frame (snapshot: LiveSnapshot): string {
  return `event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`
}
