// The primary process when `workers` is more than 1: it forks the workers (node:cluster), which
// bind the listeners' ports each with a socket of its own (SO_REUSEPORT: the kernel spreads new
// connections evenly; node:cluster's round robin through the primary gave one worker up to 83% of
// a burst of keep-alive connections, bench/RESULTS.md), answers the admin endpoints for all of
// them, validates reloads before any worker sees them, drains them together on SIGTERM and starts
// a new worker when one dies, counting the requests it had in flight as lost.
import cluster, { type Worker } from 'node:cluster'
import { once } from 'node:events'
import { AggregatorRegistry } from 'prom-client'
import type { RuntimeConfig } from '../config/runtime.ts'
import type { GatewayState, ReloadResult } from '../gateway/server.ts'
import type { GatewayLog } from '../observe/log.ts'
import { WorkerPoolMetrics } from '../observe/metrics.ts'
import { isFromWorker, type FromWorker, type ToWorker } from './worker-messages.ts'
import { Headroom, type HeadroomDocument } from '../observe/headroom.ts'
import { LIVE_MAX_REQUESTS, type LiveSnapshot, type LiveRequest } from '../admin/live-page.ts'
import { headroomDocument } from '../admin/live.ts'

/** A worker that does not answer a question within this long is reported as such. */
const ANSWER_TIMEOUT_MS = 5000
/** A worker that dies sooner than this after its start is replaced only after this long (no crash loop at full speed). */
const CRASH_LOOP_MS = 1000

interface WorkerState {
  readonly worker: Worker
  readonly startedAt: number
  state: GatewayState
  /** As last reported (once a second at most). */
  inflight: number
  addresses: string[]
}

export class WorkerPool {
  readonly log: GatewayLog
  readonly metrics = new WorkerPoolMetrics()
  readonly #aggregator = new AggregatorRegistry()
  readonly #count: number
  readonly #workers = new Map<number, WorkerState>()
  #config: RuntimeConfig
  #state: GatewayState = 'starting'
  #nextId = 0
  /** The listeners' ports as the first worker bound them; null until then. */
  #ports: number[] | null = null
  readonly #answers = new Map<number, (message: FromWorker) => void>()
  lastReload: ReloadResult | null = null
  addresses: string[] = []

  constructor (config: RuntimeConfig, count: number, log: GatewayLog) {
    this.#config = config
    this.#count = count
    this.log = log
  }

  get config (): RuntimeConfig { return this.#config }
  get state (): GatewayState { return this.#state }
  get pids (): number[] { return [...this.#workers.values()].map((w) => w.worker.process.pid!) }

  /** Ready while serving with every worker serving: one that is starting again does not count. */
  get ready (): boolean {
    if (this.#state !== 'serving' || this.#workers.size < this.#count) return false
    for (const w of this.#workers.values()) if (w.state !== 'serving') return false
    return true
  }

  /** Forks the workers; resolves once all serve, rejects when one ends before it does. */
  async start (): Promise<void> {
    // The workers get the resolved config, not the file: structured clone carries its Sets.
    cluster.setupPrimary({ serialization: 'advanced' })
    // The first worker binds the configured ports (port 0 picks one); the others bind the same.
    const first = await this.#fork()
    this.#ports = first.addresses.map((a) => Number(a.slice(a.lastIndexOf(':') + 1)))
    await Promise.all(Array.from({ length: this.#count - 1 }, () => this.#fork()))
    this.#state = 'serving'
    this.metrics.workers.set(this.#workers.size)
  }

  #fork (): Promise<WorkerState> {
    const worker = cluster.fork()
    const entry: WorkerState = { worker, startedAt: performance.now(), state: 'starting', inflight: 0, addresses: [] }
    this.#workers.set(worker.id, entry)
    worker.on('message', (message: unknown) => this.#onMessage(entry, message))
    worker.on('exit', (code, signal) => this.#onExit(entry, code, signal))
    this.#send(worker, { longhaul: 'start', config: this.#config, ports: this.#ports })
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null): void => reject(new Error(`worker ${worker.id} ended (code ${String(code)}) before it served`))
      worker.once('exit', onExit)
      worker.once('longhaul:serving', () => { worker.off('exit', onExit); resolve(entry) })
    })
  }

  #onMessage (entry: WorkerState, message: unknown): void {
    if (!isFromWorker(message)) return
    switch (message.longhaul) {
      case 'serving':
        entry.state = 'serving'
        entry.addresses = message.addresses
        if (this.addresses.length === 0) this.addresses = message.addresses
        entry.worker.emit('longhaul:serving')
        return
      case 'inflight':
        entry.inflight = message.inflight
        return
      case 'draining':
        entry.state = 'draining'
        return
      case 'reloaded':
      case 'status':
      case 'live':
        this.#answers.get(message.id)?.(message)
    }
  }

  #onExit (entry: WorkerState, code: number | null, signal: string | null): void {
    this.#workers.delete(entry.worker.id)
    this.metrics.workers.set(this.#workers.size)
    // During a drain (or a start that failed) a worker's end is expected: nothing to replace.
    if (this.#state !== 'serving') return
    this.metrics.restarts.inc()
    this.metrics.lostRequests.inc(entry.inflight)
    this.log.workerExited(entry.worker.id, entry.worker.process.pid!, code, signal, entry.inflight)
    const soon = performance.now() - entry.startedAt < CRASH_LOOP_MS
    setTimeout(() => {
      if (this.#state !== 'serving') return
      this.#fork().then((started) => {
        this.metrics.workers.set(this.#workers.size)
        this.log.workerStarted(started.worker.id, started.worker.process.pid!)
      }, (err: Error) => this.log.error('worker restart failed', err))
    }, soon ? CRASH_LOOP_MS : 0)
  }

  #send (worker: Worker, message: ToWorker): void {
    if (worker.isConnected()) worker.send(message)
  }

  /** Asks every worker; a worker that does not answer in time (or ends) gives undefined. */
  async #ask<T extends FromWorker> (make: (id: number) => ToWorker): Promise<Array<{ entry: WorkerState, answer: T | undefined }>> {
    return await Promise.all([...this.#workers.values()].map(async (entry) => {
      const id = ++this.#nextId
      const answer = await new Promise<T | undefined>((resolve) => {
        const done = (value: T | undefined): void => {
          clearTimeout(timer)
          this.#answers.delete(id)
          entry.worker.off('exit', gone)
          resolve(value)
        }
        const gone = (): void => done(undefined)
        const timer = setTimeout(gone, ANSWER_TIMEOUT_MS)
        entry.worker.once('exit', gone)
        this.#answers.set(id, (m) => done(m as T))
        this.#send(entry.worker, make(id))
      })
      return { entry, answer }
    }))
  }

  /** /status for all workers: counts summed, the oldest request the oldest of all, headroom from all, and one row per worker. */
  async status (): Promise<Record<string, unknown>> {
    const [answers, live] = await Promise.all([
      this.#ask<Extract<FromWorker, { longhaul: 'status' }>>((id) => ({ longhaul: 'status', id })),
      this.#ask<Extract<FromWorker, { longhaul: 'live' }>>((id) => ({ longhaul: 'live', id }))
    ])
    let inflight = 0
    let oldestInflightMs = 0
    type Endpoint = { url: string, healthy: boolean, inflight: number, queued?: number }
    const upstreams: Record<string, { panic: boolean, queued: number, endpoints: Map<string, Endpoint> }> = {}
    const workers = answers.map(({ entry, answer }) => {
      const s = answer?.status as { state: string, inflight: number, oldestInflightMs: number, upstreams: Record<string, { panic: boolean, queued: number, endpoints: Endpoint[] }> } | undefined
      if (s !== undefined) {
        entry.inflight = s.inflight
        inflight += s.inflight
        oldestInflightMs = Math.max(oldestInflightMs, s.oldestInflightMs)
        for (const [name, u] of Object.entries(s.upstreams)) {
          const merged = upstreams[name] ??= { panic: false, queued: 0, endpoints: new Map() }
          merged.panic ||= u.panic
          merged.queued += u.queued
          for (const e of u.endpoints) {
            const m = merged.endpoints.get(e.url)
            // Each worker checks endpoints itself: healthy when every worker has it in rotation.
            if (m === undefined) merged.endpoints.set(e.url, { ...e })
            else {
              m.healthy &&= e.healthy
              m.inflight += e.inflight
              if (e.queued !== undefined) m.queued = (m.queued ?? 0) + e.queued
            }
          }
        }
      }
      return { id: entry.worker.id, pid: entry.worker.process.pid, state: s?.state ?? 'unresponsive', inflight: s?.inflight ?? null, oldestInflightMs: s?.oldestInflightMs ?? null }
    })
    const { config } = this
    return {
      state: this.#state,
      config: { path: config.source.path, hash: config.source.hash, loadedAt: config.source.loadedAt },
      lastReload: this.lastReload,
      inflight,
      oldestInflightMs,
      upstreams: Object.fromEntries(Object.entries(upstreams).map(([name, u]) => [name, { panic: u.panic, queued: u.queued, endpoints: [...u.endpoints.values()] }])),
      headroom: this.#mergedHeadroom(live.map((a) => a.answer?.headroom)).report(this.config),
      workers
    }
  }

  /**
   * The live page for all workers: every worker's requests (marked with its id), outcomes and
   * endpoint loads added up, endpoints healthy when every worker has them in rotation, and one
   * headroom table from all workers' sketches merged.
   */
  async live (): Promise<LiveSnapshot> {
    const answers = await this.#ask<Extract<FromWorker, { longhaul: 'live' }>>((id) => ({ longhaul: 'live', id }))
    const inflight: LiveRequest[] = []
    const counts: Record<string, number> = {}
    const upstreams = new Map<string, { name: string, panic: boolean, queued: number, endpoints: Map<string, { url: string, healthy: boolean, inflight: number }> }>()
    let windowMinutes = 0
    let oldestMs = 0
    let inflightCount = 0
    const workers: Array<{ id: number, inflight: number, state: string }> = []
    for (const { entry, answer } of answers) {
      const live = answer?.live
      workers.push({ id: entry.worker.id, inflight: live?.inflightCount ?? entry.inflight, state: live?.state ?? 'unresponsive' })
      if (live === undefined) continue
      inflightCount += live.inflightCount
      windowMinutes = live.outcomes.windowMinutes
      for (const r of live.inflight) {
        inflight.push({ ...r, worker: entry.worker.id })
        oldestMs = Math.max(oldestMs, r.ageMs)
      }
      for (const [outcome, n] of Object.entries(live.outcomes.counts)) counts[outcome] = (counts[outcome] ?? 0) + n
      for (const u of live.upstreams) {
        let merged = upstreams.get(u.name)
        if (merged === undefined) upstreams.set(u.name, merged = { name: u.name, panic: false, queued: 0, endpoints: new Map() })
        merged.panic ||= u.panic
        merged.queued += u.queued
        for (const e of u.endpoints) {
          const m = merged.endpoints.get(e.url)
          if (m === undefined) merged.endpoints.set(e.url, { url: e.url, healthy: e.healthy, inflight: e.inflight })
          else { m.healthy &&= e.healthy; m.inflight += e.inflight }
        }
      }
    }
    inflight.sort((a, b) => b.ageMs - a.ageMs)
    inflight.length = Math.min(inflight.length, LIVE_MAX_REQUESTS)
    return {
      at: Date.now(),
      state: this.#state,
      drain: this.#state === 'draining' ? { inflight: inflightCount, oldestMs } : null,
      inflight,
      inflightCount,
      outcomes: { windowMinutes, counts },
      upstreams: [...upstreams.values()].map((u) => ({ ...u, endpoints: [...u.endpoints.values()] })),
      headroom: this.#mergedHeadroom(answers.map((a) => a.answer?.headroom)).report(this.config),
      workers
    }
  }

  /** GET /headroom for all workers: their sketches merged. */
  async headroom (): Promise<HeadroomDocument> {
    const answers = await this.#ask<Extract<FromWorker, { longhaul: 'live' }>>((id) => ({ longhaul: 'live', id }))
    return headroomDocument(this.#mergedHeadroom(answers.map((a) => a.answer?.headroom)), this.config)
  }

  #mergedHeadroom (parts: ReadonlyArray<Parameters<typeof Headroom.merged>[0][number] | undefined>): Headroom {
    return Headroom.merged(parts.filter((p) => p !== undefined))
  }

  /** /metrics: every worker's series aggregated (prom-client's cluster aggregation), then the primary's own. */
  async metricsText (): Promise<string> {
    const [workers, own] = await Promise.all([this.#aggregator.clusterMetrics(), this.metrics.text()])
    return `${workers}${own}`
  }

  get contentType (): string { return this.#aggregator.contentType }

  /**
   * Sends an already validated config to every worker; resolves with the first worker's result
   * (they run the same code on the same config).
   */
  async reload (config: RuntimeConfig): Promise<ReloadResult> {
    // A new worker count takes a restart: the pool keeps its own (and reports it, below).
    const restartRequired = config.workers === this.#config.workers ? [] : ['workers']
    const kept = { ...config, workers: this.#config.workers }
    this.#config = kept
    const answers = await this.#ask<Extract<FromWorker, { longhaul: 'reloaded' }>>((id) => ({ longhaul: 'reload', id, config: kept }))
    const results = answers.map((a) => a.answer?.result).filter((r) => r !== undefined)
    const failed = results.find((r) => !r.ok)
    const result: ReloadResult = failed ?? { ...(results[0] ?? { ok: true, at: new Date().toISOString(), errors: [], restartRequired: [] }), restartRequired: [...new Set([...(results[0]?.restartRequired ?? []), ...restartRequired])] }
    this.metrics.reloaded(result.ok)
    this.lastReload = result
    return result
  }

  reloadFailed (errors: string[]): ReloadResult {
    this.metrics.reloaded(false)
    this.lastReload = { ok: false, at: new Date().toISOString(), errors, restartRequired: [] }
    return this.lastReload
  }

  /** Every worker drains by the same rules; resolves with 0 when all finished their requests, 1 when one had to cut. */
  async drain (signal: string): Promise<number> {
    this.#state = 'draining'
    const exits = [...this.#workers.values()].map((w) => w.worker.process.exitCode !== null ? Promise.resolve([w.worker.process.exitCode]) : once(w.worker, 'exit'))
    for (const w of this.#workers.values()) this.#send(w.worker, { longhaul: 'drain', signal })
    const codes = await Promise.all(exits) as Array<[number | null]>
    return codes.every(([code]) => code === 0) ? 0 : 1
  }

  /** A second signal: end every worker at once. */
  kill (): void {
    this.#state = 'draining'
    for (const w of this.#workers.values()) w.worker.process.kill('SIGKILL')
  }
}
