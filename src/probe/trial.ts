// The five limits the probe measures, each as a trial of one duration T against the probe target:
// did a probe request of that shape survive T, or was it cut, when (counted from the start of the
// phase the limit governs) and how. The names are the doctor's properties (properties.ts), plus
// bodyIdleTimeout (longhaul's downstream.bodyIdleTimeout), which the doctor does not model.
import { http } from '../node-http.ts'
import https from 'node:https'
import http2 from 'node:http2'
import type { Socket } from 'node:net'
import { exchange, getJson, newSeen, type Send, type Seen } from './exchange.ts'
import { exchangeH2 } from './exchange-h2.ts'
import { PROBE_PREFIX, type ProbeSeen, type ProbeShape } from '../demo/probe-target.ts'

/** How the probe tries one limit. */
interface LimitTrial {
  /** The limit's name in the report. */
  readonly title: string
  /** What the probe target does to test it. */
  readonly shape: ProbeShape
  /** When the limit's clock starts, as the report says it: a cut's time is counted from there. */
  readonly phase: string
}

export const LIMITS = {
  firstByteTimeout: { title: 'time to first byte', shape: 'hold-headers', phase: 'from the request to the response headers' },
  streamIdleTimeout: { title: 'silence mid-stream', shape: 'silence', phase: 'from the first event to the next byte' },
  requestTimeout: { title: 'total duration', shape: 'drip', phase: 'from the request to the last byte, with a byte every 250 ms' },
  bodyIdleTimeout: { title: 'upload silence', shape: 'upload', phase: 'between two chunks of the request body' },
  serverIdleTimeout: { title: 'idle client connection', shape: 'keep-alive', phase: 'from the end of a response to the next request on the same connection' },
} as const satisfies Record<string, LimitTrial>

export type LimitName = keyof typeof LIMITS
export const LIMIT_NAMES = Object.keys(LIMITS) as LimitName[]

export type TrialResult =
  | { kind: 'survived', ms: number, id: string, seen: Seen }
  /** atMs: when the cut came, from the start of the phase; clean: the body ended as if complete; target: its record, when already asked. */
  | { kind: 'cut', ms: number, id: string, seen: Seen, atMs: number, phase: 'before-headers' | 'mid-body' | 'connection', clean: boolean, target?: ProbeSeen | null }
  /** The probe's own deadline ended it: something held the request without answering or cutting it. */
  | { kind: 'hung', ms: number, id: string, seen: Seen }

export interface TrialContext {
  base: URL
  /** HTTP/1.1 (exchange) or HTTP/2 (exchangeH2). */
  send: Send
  http2: boolean
  /** A fresh id per probe request, so the target's record of it can be asked for. */
  nextId: () => string
}

const UPLOAD_CHUNK = Buffer.alloc(1024, 'u')
const DRIP_EVERY_MS = 250

/** The probe's own deadline for a request whose shape lasts ms: generous, since a hop may add its own delay. */
export function deadlineFor (ms: number): number {
  return ms + Math.max(2000, Math.round(ms / 4))
}

export function runUrl (ctx: TrialContext, id: string, shape: ProbeShape, ms: number): URL {
  const url = new URL(`${PROBE_PREFIX.slice(1)}run`, ctx.base)
  url.search = new URLSearchParams({ id, shape, ms: String(ms), ...(shape === 'drip' ? { every: String(DRIP_EVERY_MS) } : {}) }).toString()
  return url
}

const marker = (id: string): string => `end ${id}`

function judge (ms: number, id: string, seen: Seen, phaseStart: number | null): TrialResult {
  const gotEnd = seen.body.includes(marker(id))
  const fromTarget = seen.headers['x-longhaul-probe'] === id
  if (seen.status === 200 && fromTarget && gotEnd && seen.complete && seen.error === null) return { kind: 'survived', ms, id, seen }
  if (seen.ending === 'deadline') return { kind: 'hung', ms, id, seen }
  const start = phaseStart ?? seen.startedAt
  const cutAt = seen.headersAt !== null && !(seen.status === 200 && fromTarget) ? seen.headersAt : seen.endedAt
  const phase = seen.status === 200 && fromTarget ? 'mid-body' : 'before-headers'
  // The worst case: HTTP says the message is complete, yet the target's end never came.
  const clean = phase === 'mid-body' && seen.complete && seen.error === null && !gotEnd
  return { kind: 'cut', ms, id, seen, atMs: Math.max(0, Math.round(cutAt - start)), phase, clean }
}

/** The target's record of a request; a cut in front of it may reach it a moment after the client saw it. */
export async function targetSaw (ctx: Pick<TrialContext, 'base' | 'send'>, id: string): Promise<ProbeSeen | null> {
  const url = new URL(`${PROBE_PREFIX.slice(1)}seen?id=${encodeURIComponent(id)}`, ctx.base)
  for (let attempt = 0; ; attempt++) {
    const got = await getJson(ctx.send, url, 5000)
    if (got === null || got.status !== 200) return null
    const seen = got.json as ProbeSeen
    if (seen.end !== 'open' || attempt === 9) return seen
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

async function simple (ctx: TrialContext, shape: ProbeShape, ms: number): Promise<TrialResult> {
  const id = ctx.nextId()
  const seen = await ctx.send({ url: runUrl(ctx, id, shape, ms), method: 'GET', agent: false, deadlineMs: deadlineFor(ms), headers: { 'x-request-id': id } })
  return judge(ms, id, seen, seen.startedAt)
}

/**
 * The silence that counts is the app's: from its start event to the cut, as the target saw them.
 * The client's own view starts late when a hop holds the first bytes back (HAProxy sends with
 * MSG_MORE unless `option http-no-delay`: about 200 ms), so it is only the fallback.
 */
async function silence (ctx: TrialContext, ms: number): Promise<TrialResult> {
  const id = ctx.nextId()
  const seen = await ctx.send({ url: runUrl(ctx, id, 'silence', ms), method: 'GET', agent: false, deadlineMs: deadlineFor(ms), headers: { 'x-request-id': id }, startMarker: `start ${id}` })
  const r = judge(ms, id, seen, seen.startEventAt ?? seen.headersAt)
  if (r.kind !== 'cut' || r.phase !== 'mid-body') return r
  const target = await targetSaw(ctx, id)
  // Cancelled: the app was silent until the cut; completed: until its own end, the cut came with it or after.
  const silent = target != null && target.end !== 'open' && target.headersAfterMs !== null && target.endedAfterMs !== null ? target.endedAfterMs - target.headersAfterMs : null
  return { ...r, atMs: silent ?? r.atMs, target }
}

async function upload (ctx: TrialContext, ms: number): Promise<TrialResult> {
  const id = ctx.nextId()
  let firstChunkAt: number | null = null
  const seen = await ctx.send({
    url: runUrl(ctx, id, 'upload', ms),
    method: 'POST',
    agent: false,
    deadlineMs: deadlineFor(ms),
    headers: { 'x-request-id': id, 'content-type': 'application/octet-stream', 'content-length': String(UPLOAD_CHUNK.length * 2) },
    body: async (req) => {
      req.write(UPLOAD_CHUNK)
      firstChunkAt = performance.now()
      // The silence: it ends early when a hop answers or closes during it.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms)
        function done (): void {
          clearTimeout(timer)
          req.off('response', done)
          req.off('close', done)
          resolve()
        }
        req.once('response', done)
        req.once('close', done)
      })
      if (!req.destroyed && req.writable) req.end(UPLOAD_CHUNK)
    },
  })
  return judge(ms, id, seen, firstChunkAt)
}

// Node's agent closes a pooled connection on its own a second before the server's
// `Keep-Alive: timeout=` hint: the probe keeps it until the other side closes, to see that side.
function keepSocketAlive (socket: Socket): boolean {
  socket.setKeepAlive(true, 1000)
  socket.unref()
  socket.setTimeout(0)
  return true
}
class HoldingAgent extends http.Agent { override keepSocketAlive (socket: Socket): boolean { return keepSocketAlive(socket) } }
class HoldingHttpsAgent extends https.Agent { override keepSocketAlive (socket: Socket): boolean { return keepSocketAlive(socket) } }

/** Two requests on one connection, T apart: does the connection stay open that long? */
async function keepAlive (ctx: TrialContext, ms: number): Promise<TrialResult> {
  const options = { keepAlive: true, maxSockets: 1 }
  const agent = ctx.base.protocol === 'https:' ? new HoldingHttpsAgent(options) : new HoldingAgent(options)
  try {
    const id = ctx.nextId()
    const first = await exchange({ url: runUrl(ctx, id, 'keep-alive', 0), method: 'GET', agent, deadlineMs: deadlineFor(0), headers: { 'x-request-id': id } })
    const firstResult = judge(0, id, first, null)
    if (firstResult.kind !== 'survived') return firstResult
    const socket = first.socket
    const idleFrom = first.endedAt
    if (socket === null || socket.destroyed) return { kind: 'cut', ms, id, seen: first, atMs: 0, phase: 'connection', clean: false }
    // Wait T, or until the connection is closed under us.
    const closedAt = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => { socket.off('close', onClose); resolve(null) }, ms)
      function onClose (): void { clearTimeout(timer); resolve(performance.now()) }
      socket.once('close', onClose)
    })
    if (closedAt !== null) return { kind: 'cut', ms, id, seen: first, atMs: Math.round(closedAt - idleFrom), phase: 'connection', clean: false }
    const id2 = ctx.nextId()
    const second = await exchange({ url: runUrl(ctx, id2, 'keep-alive', 0), method: 'GET', agent, deadlineMs: deadlineFor(0), headers: { 'x-request-id': id2 } })
    const secondResult = judge(ms, id2, second, null)
    if (secondResult.kind === 'survived' && second.reusedSocket) return { kind: 'survived', ms, id, seen: first }
    // Closed just as we reused it (the race every pooled client knows), or a new connection was needed.
    return { kind: 'cut', ms, id, seen: first, atMs: ms, phase: 'connection', clean: false }
  } finally {
    agent.destroy()
  }
}

/** HTTP/2: one session, a request, then T idle, then a second stream on the same session. */
async function keepAliveH2 (ctx: TrialContext, ms: number): Promise<TrialResult> {
  const session = http2.connect(ctx.base.origin)
  session.on('error', () => {})
  const closed = new Promise<number>((resolve) => {
    session.once('goaway', () => resolve(performance.now()))
    session.once('close', () => resolve(performance.now()))
  })
  try {
    const id = ctx.nextId()
    const first = await onSession(session, runUrl(ctx, id, 'keep-alive', 0), id)
    const firstResult = judge(0, id, first, null)
    if (firstResult.kind !== 'survived') return firstResult
    const idleFrom = first.endedAt
    const closedAt = await Promise.race([closed, new Promise<null>((resolve) => setTimeout(resolve, ms, null))])
    if (closedAt !== null) return { kind: 'cut', ms, id, seen: first, atMs: Math.round(closedAt - idleFrom), phase: 'connection', clean: false }
    const id2 = ctx.nextId()
    const second = judge(ms, id2, await onSession(session, runUrl(ctx, id2, 'keep-alive', 0), id2), null)
    return second.kind === 'survived' ? { kind: 'survived', ms, id, seen: first } : { kind: 'cut', ms, id, seen: first, atMs: ms, phase: 'connection', clean: false }
  } finally {
    session.destroy()
  }
}

/** A short GET on an open session (the keep-alive trial's two requests). */
function onSession (session: http2.ClientHttp2Session, url: URL, id: string): Promise<Seen> {
  return new Promise((resolve) => {
    const seen = newSeen({ localPort: session.socket?.localPort ?? null, reusedSocket: true })
    let stream: http2.ClientHttp2Stream
    try {
      stream = session.request({ ':path': `${url.pathname}${url.search}`, 'x-request-id': id })
    } catch (err) {
      seen.error = (err as Error).message
      seen.endedAt = performance.now()
      return resolve(seen)
    }
    const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), deadlineFor(0))
    stream.on('response', (h) => {
      seen.headersAt = performance.now()
      seen.status = Number(h[':status'])
      if (h['x-longhaul-probe'] !== undefined) seen.headers['x-longhaul-probe'] = String(h['x-longhaul-probe'])
      if (h.server !== undefined) seen.headers.server = String(h.server)
    })
    stream.setEncoding('utf8')
    stream.on('data', (c: string) => { seen.body += c })
    stream.on('end', () => { seen.complete = true })
    stream.on('error', (err: Error) => { seen.error ??= err.message })
    stream.on('close', () => {
      clearTimeout(timer)
      seen.endedAt = performance.now()
      resolve(seen)
    })
  })
}

export function trial (ctx: TrialContext, limit: LimitName, ms: number): Promise<TrialResult> {
  switch (limit) {
    case 'firstByteTimeout': return simple(ctx, 'hold-headers', ms)
    case 'streamIdleTimeout': return silence(ctx, ms)
    case 'requestTimeout': return simple(ctx, 'drip', ms)
    case 'bodyIdleTimeout': return upload(ctx, ms)
    case 'serverIdleTimeout': return ctx.http2 ? keepAliveH2(ctx, ms) : keepAlive(ctx, ms)
  }
}
