// Every log line longhaul writes is a method here (like fastify's log-controller): the access
// line, one per finished request, and the lifecycle events. Nothing else calls pino.
import pino, { type Logger } from 'pino'
import type { Diagnostic } from '../config/diagnostics.ts'
import { formatDiagnostic } from '../config/diagnostics.ts'

export interface AccessRecord {
  requestId: string
  method: string
  host: string | null
  path: string
  route: string | null
  upstream: string | null
  endpoint: string | null
  protocol: string
  clientIp: string
  status: number
  outcome: string
  attempts: number
  bytesIn: number
  bytesOut: number
  durationMs: number
  firstByteMs: number | null
  limitMs?: number
  /** The client's own attempt number (X-Stainless-Retry-Count of the OpenAI and Anthropic SDKs: 0 first), when it sent one. */
  clientRetryCount?: number
  /** The protocol of an upgraded connection (a WebSocket tunnel): `websocket`. */
  upgrade?: string
}

let lastMs = 0
let lastTime = ''
/** pino's isoTime, formatted once per millisecond rather than once per line. */
function isoTimeOncePerMs (): string {
  const ms = Date.now()
  if (ms !== lastMs) {
    lastMs = ms
    lastTime = `,"time":"${new Date(ms).toISOString()}"`
  }
  return lastTime
}

/** The parts of the access line around its fields, in pino's order (level, time, pid, fields, msg). */
const ACCESS_LEVEL = `{"level":${pino.levels.values.info}`
const PID_FIELD = `,"pid":${process.pid}`
const ACCESS_MSG = ',"msg":"access"}\n'

/** Linux's PIPE_BUF: a write to a pipe of at most this many bytes is never split. */
const PIPE_BUF = 4096
/**
 * A batch of access lines at most, in UTF-16 code units: a third of the bytes one write holds
 * (a code unit is at most 3 bytes of UTF-8), sonic-boom's maxWrite or, on a shared stdout, PIPE_BUF.
 */
const BATCH_MAX_CHARS = Math.floor(16384 / 3)
const BATCH_MAX_CHARS_SHARED = Math.floor(PIPE_BUF / 3)

/** The logs holding a batch: a process that exits hands their lines to pino before its own exit flush. */
const batching = new Set<GatewayLog>()
process.on('exit', () => { for (const log of batching) log.flushBatch() })

export class GatewayLog {
  readonly #logger: Logger
  readonly #destination: pino.DestinationStream
  /** The access line's level (info) is enabled: checked once per level change, not per request. */
  #accessOn: boolean
  /** Access lines of this turn of the event loop, written together (see access()). */
  #batch: string[] = []
  #batchChars = 0
  readonly #batchMaxChars: number
  #flushScheduled = false
  readonly #writeBatch = (): void => {
    this.#flushScheduled = false
    this.flushBatch()
  }

  /**
   * `sharedStdout`: other processes (the workers, their primary) write to the same stdout. Each
   * write then holds whole lines and at most PIPE_BUF (4096) bytes, which a pipe writes atomically,
   * so two processes' lines never interleave mid-line.
   */
  constructor (level: string, destination?: pino.DestinationStream, options: { sharedStdout?: boolean } = {}) {
    // Asynchronous writes: no synchronous I/O in the data path (pino docs/asynchronous.md).
    this.#destination = destination ?? pino.destination({ dest: 1, sync: false, ...(options.sharedStdout === true ? { maxWrite: PIPE_BUF } : {}) })
    this.#logger = pino({ level, base: { pid: process.pid }, timestamp: isoTimeOncePerMs }, this.#destination)
    this.#batchMaxChars = options.sharedStdout === true ? BATCH_MAX_CHARS_SHARED : BATCH_MAX_CHARS
    this.#accessOn = this.#logger.isLevelEnabled('info')
  }

  set level (level: string) {
    this.#logger.level = level
    this.#accessOn = this.#logger.isLevelEnabled('info')
  }

  /**
   * The access line, the same bytes pino's `info(record, 'access')` writes, to the same
   * destination. It is the one line per request: pino's serialiser walks the record key by key in
   * JavaScript, while JSON.stringify of a record of one fixed shape runs in V8's native fast path
   * (about 5 µs per request less, bench/RESULTS.md §7). The record holds strings, numbers and
   * nulls only, which both serialise alike.
   *
   * The lines of one turn of the event loop go to the destination in one write at its end:
   * sonic-boom measures the UTF-8 length of its whole pending buffer on every write (a copy of
   * the buffer, which grows by one line per write while a write is in flight), which cost more
   * than the line's own serialising under load.
   */
  access (record: AccessRecord): void {
    if (!this.#accessOn) return
    const fields = JSON.stringify(record)
    const line = `${ACCESS_LEVEL}${isoTimeOncePerMs()}${PID_FIELD},${fields.slice(1, -1)}${ACCESS_MSG}`
    if (this.#batchChars + line.length > this.#batchMaxChars) this.flushBatch()
    if (this.#batch.length === 0) {
      batching.add(this)
      if (!this.#flushScheduled) {
        this.#flushScheduled = true
        setImmediate(this.#writeBatch)
      }
    }
    this.#batch.push(line)
    this.#batchChars += line.length
  }

  /** Writes the batched access lines to the destination (at the end of the loop's turn, or when the batch is full). */
  flushBatch (): void {
    if (this.#batch.length === 0) return
    batching.delete(this)
    const text = this.#batch.length === 1 ? this.#batch[0]! : this.#batch.join('')
    this.#batch = []
    this.#batchChars = 0
    this.#destination.write(text)
  }

  started (listeners: string[], admin: string, configPath: string, configHash: string, workers?: number[]): void {
    this.#logger.info({ listeners, admin, config: configPath, configHash, ...(workers === undefined ? {} : { workers }) }, 'started')
  }

  /** A worker process ended outside a drain: its in-flight requests were lost, and it is started again. */
  workerExited (worker: number, workerPid: number, code: number | null, signal: string | null, lostRequests: number): void {
    this.#logger.error({ worker, workerPid, code, signal, lostRequests }, 'worker exited; starting a new one')
  }

  workerStarted (worker: number, workerPid: number): void {
    this.#logger.info({ worker, workerPid }, 'worker started')
  }

  /** At start: the open files limit in force, and a warning when it holds fewer than `wanted` streams. */
  openFiles (limit: number, http1Streams: number, wanted: number): void {
    if (http1Streams >= wanted) this.#logger.info({ openFilesLimit: limit, http1Streams }, 'open files limit')
    else this.#logger.warn({ openFilesLimit: limit, http1Streams }, `the open files limit (${limit}) holds about ${http1Streams} concurrent HTTP/1.1 streams (two descriptors each): raise its hard limit where longhaul is started (ulimit -Hn, systemd LimitNOFILE=, docker run --ulimit nofile=)`)
  }

  configWarnings (warnings: readonly Diagnostic[]): void {
    for (const w of warnings) this.#logger.warn({ warning: formatDiagnostic(w) }, 'config warning')
  }

  /** The gateway's own code threw while handling a request (internal_error): the stack, for a bug report. */
  internalError (requestId: string, err: unknown): void {
    this.#logger.error({ requestId, err }, 'internal error')
  }

  upstreamWarning (upstream: string, endpoint: string, warning: string): void {
    this.#logger.warn({ upstream, endpoint, warning }, 'upstream warning')
  }

  endpointChanged (upstream: string, endpoint: string, available: boolean, reason: string): void {
    if (available) this.#logger.info({ upstream, endpoint, reason }, 'endpoint back in rotation')
    else this.#logger.warn({ upstream, endpoint, reason }, 'endpoint out of rotation')
  }

  endpointsChanged (upstream: string, added: string[], removed: string[]): void {
    this.#logger.info({ upstream, added, removed }, 'dns endpoints changed')
  }

  dnsFailed (upstream: string, name: string, reason: string): void {
    this.#logger.warn({ upstream, name, reason }, 'dns lookup failed; keeping the last endpoints')
  }

  upstreamPanic (upstream: string, on: boolean): void {
    if (on) this.#logger.error({ upstream }, 'every endpoint of the upstream is out of rotation: using them all rather than failing every request')
    else this.#logger.info({ upstream }, 'the upstream has endpoints in rotation again')
  }

  demoUpstream (url: string): void {
    this.#logger.info({ url }, 'demo upstream started')
  }

  drainStarted (signal: string, inflight: number, delayMs: number, timeoutMs: number): void {
    this.#logger.info({ signal, inflight, delayMs, timeoutMs }, 'drain started')
  }

  drainStoppedAccepting (inflight: number, oldestInflightMs: number): void {
    this.#logger.info({ inflight, oldestInflightMs }, 'drain: stopped accepting')
  }

  drainProgress (inflight: number, oldestInflightMs: number, leftMs: number): void {
    this.#logger.info({ inflight, oldestInflightMs, leftMs }, 'drain progress')
  }

  drainFinished (cut: number, durationMs: number): void {
    this.#logger.info({ cut, durationMs }, 'drain finished')
  }

  reloaded (path: string, hash: string, restartRequired: string[]): void {
    this.#logger.info({ config: path, configHash: hash }, 'config reloaded')
    if (restartRequired.length > 0) this.#logger.warn({ restartRequired }, 'config reload: these changes need a restart and are not in effect')
  }

  reloadFailed (path: string, errors: string[]): void {
    this.#logger.error({ config: path, errors }, 'config reload failed; the running config is unchanged')
  }

  notice (message: string, fields: Record<string, unknown> = {}): void {
    this.#logger.info(fields, message)
  }

  exited (code: number): void {
    this.#logger.info({ code }, 'exit')
  }

  error (event: string, err: unknown): void {
    this.#logger.error({ err }, event)
  }

  /**
   * Writes out what is buffered, before exit. Asynchronous and bounded: a log reader that stopped
   * reading (a full pipe) must not hold the process forever, as a synchronous flush would.
   *
   * It ends when sonic-boom has no write left in flight: its own flush() returns at once with
   * pino's minLength 0, and an exit then would leave a write in Node's thread pool half done while
   * the exit hook writes the later lines (a line cut, lines out of order, test/access-line.test.ts).
   * An empty write queues behind every pending one, and 'drain' comes when all are written.
   */
  flush (timeoutMs = 1000): Promise<void> {
    this.flushBatch()
    const destination = this.#destination as { once?: (event: 'drain', listener: () => void) => void, write: (data: string) => unknown }
    return new Promise((resolve) => {
      if (typeof destination.once !== 'function') return resolve()
      const timer = setTimeout(resolve, timeoutMs)
      try {
        destination.once('drain', () => { clearTimeout(timer); resolve() })
        destination.write('')
      } catch {
        clearTimeout(timer)
        resolve() // nothing more can be done at exit
      }
    })
  }
}
