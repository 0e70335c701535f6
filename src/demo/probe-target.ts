// The probe target: the app end of a chain that `longhaul probe` measures. Each probe request
// chooses its shape (hold the headers, go silent mid-stream, drip, take an upload, keep an idle
// connection) and carries a probe id; the target stamps what it saw under that id (arrival, the
// end of its response, who closed the connection and when), so that the probe can ask afterwards
// and tell a cut in front of the app from the app's own end.
//
//   GET  /longhaul-probe/hello                          the handshake: the target says it cooperates
//   ANY  /longhaul-probe/run?id=ID&shape=SHAPE&ms=T[&every=I]
//   GET  /longhaul-probe/seen?id=ID                     what the target saw of that probe request
import type { Socket } from 'node:net'
import type { Exchange } from './exchange.ts'

export const PROBE_PREFIX = '/longhaul-probe/'
export const PROBE_PROTOCOL = 1
/** Response header that marks a response as the target's own (not a hop's error page). */
export const PROBE_HEADER = 'x-longhaul-probe'

export const PROBE_SHAPES = {
  'hold-headers': 'hold the response headers for ms, then answer',
  silence: 'send the headers and a start event, stay silent for ms, then send the end event',
  drip: 'send the headers, then a byte every `every` ms (default 250) for ms in all, then the end event',
  upload: 'read the request body (as it comes, or at `rate` bytes per second), then answer with its size and the longest wait for a chunk',
  'keep-alive': 'answer at once; the connection\'s close is stamped (when, and by whom)',
} as const

export type ProbeShape = keyof typeof PROBE_SHAPES

/** What the target saw of one probe request (the `seen` answer). */
export interface ProbeSeen {
  id: string
  shape: ProbeShape
  arrivedAt: string
  /** The peer address of the connection the request came on, and hop headers it carried. */
  peer: string
  via: string | null
  forwardedFor: string | null
  /** ms after arrival: response headers sent, response finished or abandoned. */
  headersAfterMs: number | null
  endedAfterMs: number | null
  /** completed: the target wrote its whole answer; cancelled: the peer went away first; open: still running. */
  end: 'completed' | 'cancelled' | 'open'
  bytesIn: number
  bytesOut: number
  /** Upload: the longest gap between two request body chunks. */
  maxBodyGapMs: number | null
  /** The connection's close, ms after arrival, and who closed it (peer: a FIN or RST came first). */
  connectionClosedAfterMs: number | null
  connectionClosedBy: 'peer' | 'target' | null
}

const MAX_RECORDS = 1000
/** Longest shape a probe may ask for: a probe is bounded, and so is the target. */
const MAX_PROBE_MS = 60 * 60 * 1000
const DEFAULT_DRIP_MS = 250
const ID = /^[A-Za-z0-9_.-]{1,80}$/
const START = (id: string): string => `event: probe\ndata: start ${id}\n\n`
const END = (id: string): string => `event: probe\ndata: end ${id}\n\n`
// The stream shapes are event streams, so that hops apply what they do to streams (no buffering,
// heartbeats, an error record when they cut).
const STREAM_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' }
const TEXT_HEADERS = { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }

type Query = { ok: true, id: string, shape: ProbeShape, ms: number, every: number, rate: number | null } | { ok: false, error: string }

function parseRun (q: URLSearchParams): Query {
  const id = q.get('id') ?? ''
  if (!ID.test(id)) return { ok: false, error: `invalid id: '${id}' (1-80 letters, digits, _ . -)` }
  const shape = q.get('shape') ?? ''
  if (!Object.hasOwn(PROBE_SHAPES, shape)) return { ok: false, error: `invalid shape: '${shape}' (one of ${Object.keys(PROBE_SHAPES).join(', ')})` }
  const int = <T extends number | null>(name: string, fallback: T, min: number, unit = 'ms'): number | T | string => {
    const raw = q.get(name)
    if (raw === null) return fallback
    const n = Number(raw)
    return /^\d+$/.test(raw) && n >= min && n <= MAX_PROBE_MS ? n : `invalid ${name}: '${raw}' (an integer number of ${unit}, ${min} to ${MAX_PROBE_MS})`
  }
  const ms = int('ms', 0, 0)
  if (typeof ms === 'string') return { ok: false, error: ms }
  const every = int('every', DEFAULT_DRIP_MS, 1)
  if (typeof every === 'string') return { ok: false, error: every }
  const rate = int('rate', null, 1, 'bytes per second')
  if (typeof rate === 'string') return { ok: false, error: rate }
  return { ok: true, id, shape: shape as ProbeShape, ms, every, rate }
}

/** The probe target of one demo upstream: its records, kept for the most recent probe requests. */
export class ProbeTarget {
  readonly #seen = new Map<string, ProbeSeen>()

  async handle (x: Exchange, url: URL): Promise<void> {
    const what = url.pathname.slice(PROBE_PREFIX.length)
    if (what === 'hello') {
      await x.readBody(false)
      return x.json(200, { probeTarget: 'longhaul', protocol: PROBE_PROTOCOL, shapes: PROBE_SHAPES, peer: `${x.socket.remoteAddress ?? '?'}:${x.socket.remotePort ?? '?'}` })
    }
    if (what === 'seen') {
      await x.readBody(false)
      const id = url.searchParams.get('id') ?? ''
      const seen = this.#seen.get(id)
      return seen === undefined ? x.json(404, { error: `no probe request with id '${id}' reached the target` }) : x.json(200, seen)
    }
    if (what !== 'run') {
      await x.readBody(false)
      return x.json(404, { error: `not found: ${url.pathname} (the probe target answers ${PROBE_PREFIX}hello, run and seen)` })
    }
    const q = parseRun(url.searchParams)
    if (!q.ok) {
      await x.readBody(false)
      return x.json(400, { error: q.error })
    }
    if (this.#seen.has(q.id)) {
      await x.readBody(false)
      return x.json(409, { error: `probe id '${q.id}' was already used` })
    }
    const { seen, since } = this.#record(x, q.id, q.shape)
    x.res.setHeader(PROBE_HEADER, q.id)
    // Timing is what the probe measures: no Nagle delay between the headers and the first event.
    x.socket.setNoDelay(true)
    const begin: Begin = async (headers) => {
      seen.headersAfterMs = since()
      return await x.begin(200, headers)
    }
    await SHAPES[q.shape](x, q, begin, seen)
  }

  #record (x: Exchange, id: string, shape: ProbeShape): { seen: ProbeSeen, since: () => number } {
    const arrived = performance.now()
    const since = (): number => Math.round(performance.now() - arrived)
    const header = (name: string): string | null => {
      const v = x.req.headers[name]
      return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v
    }
    const seen: ProbeSeen = {
      id,
      shape,
      arrivedAt: new Date().toISOString(),
      peer: `${x.socket.remoteAddress ?? '?'}:${x.socket.remotePort ?? '?'}`,
      via: header('via'),
      forwardedFor: header('x-forwarded-for') ?? header('forwarded'),
      headersAfterMs: null,
      endedAfterMs: null,
      end: 'open',
      bytesIn: 0,
      bytesOut: 0,
      maxBodyGapMs: null,
      connectionClosedAfterMs: null,
      connectionClosedBy: null,
    }
    if (this.#seen.size >= MAX_RECORDS) this.#seen.delete(this.#seen.keys().next().value!)
    this.#seen.set(id, seen)
    x.res.once('close', () => {
      seen.endedAfterMs = since()
      seen.end = x.res.writableFinished ? 'completed' : 'cancelled'
      seen.bytesIn = x.bytesIn
      seen.bytesOut = x.bytesOut
    })
    stampClose(x.socket, seen, since)
    return { seen, since }
  }
}

const watched = new WeakMap<Socket, Array<{ seen: ProbeSeen, since: () => number }>>()

/** Stamps the connection's close on every probe request it carried: the peer closed it if its FIN (or RST) came before our own close. */
function stampClose (socket: Socket, seen: ProbeSeen, since: () => number): void {
  const list = watched.get(socket)
  if (list !== undefined) {
    list.push({ seen, since })
    return
  }
  const requests = [{ seen, since }]
  watched.set(socket, requests)
  let peerFirst = false
  socket.once('end', () => { peerFirst = true })
  socket.once('error', () => { peerFirst = true })
  socket.once('close', () => {
    for (const r of requests) {
      r.seen.connectionClosedAfterMs = r.since()
      r.seen.connectionClosedBy = peerFirst ? 'peer' : 'target'
    }
  })
}

type Run = Extract<Query, { ok: true }>
/** Sends status 200 with these headers, stamping when they left (the target's first byte). */
type Begin = (headers: Record<string, string>) => Promise<boolean>
type ShapeHandler = (x: Exchange, q: Run, begin: Begin, seen: ProbeSeen) => Promise<void>

const SHAPES: Readonly<Record<ProbeShape, ShapeHandler>> = {
  async 'hold-headers' (x, q, begin) {
    await x.readBody(false)
    if (!(await x.sleep(q.ms))) return
    if (await begin(TEXT_HEADERS)) x.end(`end ${q.id}\n`)
  },
  async silence (x, q, begin) {
    await x.readBody(false)
    if (!(await begin(STREAM_HEADERS)) || !(await x.write(START(q.id)))) return
    if (await x.sleep(q.ms)) x.end(END(q.id))
  },
  async drip (x, q, begin) {
    await x.readBody(false)
    if (!(await begin(STREAM_HEADERS)) || !(await x.write(START(q.id)))) return
    // Counted, not clocked: a timer may fire a hair early, and that must not add a byte.
    const ticks = Math.ceil(q.ms / q.every)
    for (let i = 1; i <= ticks; i++) {
      if (!(await x.sleep(i < ticks ? q.every : q.ms - q.every * (ticks - 1)))) return
      if (!(await x.write(':\n'))) return
    }
    x.end(END(q.id))
  },
  async upload (x, q, begin, seen) {
    let last = performance.now()
    let maxGap = 0
    for await (const chunk of x.req as AsyncIterable<Buffer>) {
      if (x.bytesIn > 0) maxGap = Math.max(maxGap, performance.now() - last)
      x.bytesIn += chunk.length
      seen.maxBodyGapMs = Math.round(maxGap)
      // A slow reader: backpressure reaches the sender, as from an app that processes as it reads.
      if (q.rate !== null && !(await x.sleep(chunk.length * 1000 / q.rate))) return
      last = performance.now()
    }
    seen.maxBodyGapMs = Math.round(maxGap)
    if (await begin(TEXT_HEADERS)) x.end(`end ${q.id} bytes=${x.bytesIn}\n`)
  },
  async 'keep-alive' (x, q, begin) {
    await x.readBody(false)
    if (await begin(TEXT_HEADERS)) x.end(`end ${q.id}\n`)
  },
}
