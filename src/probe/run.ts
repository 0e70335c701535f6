// One probe run: the handshake with the target, the five searches (at most `concurrency` at a
// time, every one inside the run's time bound), then each cut explained: what the client saw,
// what the target saw, and the hop that did it.
import { randomBytes } from 'node:crypto'
import { exchange, getJson, type Send, type Seen } from './exchange.ts'
import { exchangeH2, h2CodeName } from './exchange-h2.ts'
import { fingerprint, type Fingerprint } from './fingerprint.ts'
import { search, toleranceMs, type SearchResult } from './search.ts'
import { deadlineFor, LIMIT_NAMES, LIMITS, targetSaw, trial, type LimitName, type TrialContext, type TrialResult } from './trial.ts'
import { PROBE_PREFIX, PROBE_PROTOCOL, type ProbeSeen } from '../demo/probe-target.ts'

export interface ProbeOptions {
  maxMs: number
  /** HTTP/2 instead of HTTP/1.1 (h2 by ALPN on https://, prior knowledge on http://). */
  http2?: boolean
  concurrency: number
  limits?: readonly LimitName[]
  /** Called once the target answered, before the long part of the run. */
  onPlan?: (plan: ProbePlan) => void
}

export interface ProbePlan {
  url: string
  protocol: 'http/1.1' | 'h2'
  limits: readonly LimitName[]
  maxMs: number
  concurrency: number
  boundMs: number
  reachedThrough: string | null
}

export interface CutReport {
  /** When, counted from the start of the phase the limit governs; null when nothing came in time. */
  atMs: number | null
  when: 'before the response headers' | 'mid-body' | 'on the idle connection' | 'no answer within the probe\'s deadline'
  clean: boolean
  status: number | null
  /** What the client saw, in words, and as curl would have said it. */
  client: string
  curl: string
  body: string
  hop: string | null
  by: string
  /** What the target saw of the same request. */
  target: string
  seen: ProbeSeen | null
}

export interface MeasuredLimit {
  name: LimitName
  title: string
  phase: string
  status: SearchResult['status']
  /** found: the limit, within ±toleranceMs; none: beyond maxMs. */
  ms: number | null
  lowMs: number | null
  toleranceMs: number | null
  reason: string | null
  cut: CutReport | null
  trials: Array<{ ms: number, result: TrialResult['kind'], atMs: number | null }>
}

export interface ProbeReport {
  url: string
  protocol: 'http/1.1' | 'h2'
  reachedThrough: string | null
  maxMs: number
  concurrency: number
  startedAt: string
  durationMs: number
  limits: MeasuredLimit[]
  cleanCuts: number
}

export class ProbeRefused extends Error {}

/** How long a whole run may take: each search's growth and narrowing, in rounds of `concurrency`. */
export function runBoundMs (limits: number, maxMs: number, concurrency: number): number {
  return Math.ceil(limits / concurrency) * (4 * maxMs + 10_000)
}

export async function probe (url: string, o: ProbeOptions): Promise<ProbeReport> {
  const base = new URL(url)
  if (!base.pathname.endsWith('/')) base.pathname += '/'
  base.search = ''
  const send: Send = o.http2 === true ? exchangeH2 : exchange
  const hello = await getJson(send, new URL(`${PROBE_PREFIX.slice(1)}hello`, base), 10_000)
  const answer = hello?.json as { probeTarget?: unknown, protocol?: unknown } | null | undefined
  if (hello === null || hello.status !== 200 || answer?.probeTarget !== 'longhaul') {
    const got = hello === null ? 'no answer' : `HTTP ${hello.status}`
    throw new ProbeRefused(`${base.href} does not answer as a probe target (${got} from ${PROBE_PREFIX.slice(1)}hello): run \`longhaul demo-upstream\` beside the app and route ${base.pathname}longhaul-probe/ to it`)
  }
  if (answer.protocol !== PROBE_PROTOCOL) throw new ProbeRefused(`the probe target speaks protocol ${String(answer.protocol)}; this probe speaks ${PROBE_PROTOCOL}`)
  const through = fingerprint(hello.seen)
  const limits = o.limits ?? LIMIT_NAMES
  const boundMs = runBoundMs(limits.length, o.maxMs, o.concurrency)
  o.onPlan?.({ url: base.href, protocol: ctxProtocol(o), limits, maxMs: o.maxMs, concurrency: o.concurrency, boundMs, reachedThrough: through?.by ?? null })

  const started = performance.now()
  const runEnds = started + boundMs
  const run = randomBytes(4).toString('hex')
  let seq = 0
  const ctx: TrialContext = { base, send, http2: o.http2 === true, nextId: () => `p${run}-${++seq}` }
  const results = await bounded(limits, o.concurrency, (limit) => search((ms) => trial(ctx, limit, ms), {
    maxMs: o.maxMs,
    mayRun: (ms) => performance.now() + deadlineFor(ms) <= runEnds,
  }))
  const measured: MeasuredLimit[] = []
  for (const [i, limit] of limits.entries()) measured.push(await explain(ctx, limit, results[i]!, through))
  attributeByTime(measured)
  return {
    url: base.href,
    protocol: ctxProtocol(o),
    reachedThrough: through?.by ?? null,
    maxMs: o.maxMs,
    concurrency: o.concurrency,
    startedAt: new Date(Date.now() - (performance.now() - started)).toISOString(),
    durationMs: Math.round(performance.now() - started),
    limits: measured,
    cleanCuts: measured.filter((m) => m.cut?.clean === true).length,
  }
}

const ctxProtocol = (o: ProbeOptions): 'http/1.1' | 'h2' => o.http2 === true ? 'h2' : 'http/1.1'

/** Runs fn over items, at most n at a time, keeping the order of the results. */
async function bounded<T, R> (items: readonly T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker))
  return out
}

async function explain (ctx: TrialContext, limit: LimitName, r: SearchResult, through: Fingerprint | null): Promise<MeasuredLimit> {
  const spec = LIMITS[limit]
  const trials = r.trials.map((t) => ({ ms: t.ms, result: t.kind, atMs: t.kind === 'cut' ? t.atMs : null }))
  const common = { name: limit, title: spec.title, phase: spec.phase, status: r.status, trials }
  if (r.status === 'none') return { ...common, ms: null, lowMs: r.maxMs, toleranceMs: null, reason: null, cut: null }
  const cut = r.cut === null ? null : await cutReport(ctx, r.cut, through)
  if (r.status === 'unfinished') return { ...common, ms: null, lowMs: r.lowMs, toleranceMs: null, reason: r.reason, cut }
  return { ...common, ms: r.ms, lowMs: r.lowMs, toleranceMs: toleranceMs(r.ms), reason: null, cut }
}

/**
 * through: how the handshake's response named the hop the client connects to; that hop alone can
 * close the client's connection without a response (an idle close, a body it stopped waiting for).
 */
async function cutReport (ctx: TrialContext, t: Extract<TrialResult, { kind: 'cut' | 'hung' }>, through: Fingerprint | null): Promise<CutReport> {
  const seen = t.kind === 'cut' && t.target !== undefined ? t.target : await targetSaw(ctx, t.id)
  const s = t.seen
  const when: CutReport['when'] = t.kind === 'hung' ? 'no answer within the probe\'s deadline' : t.phase === 'connection' ? 'on the idle connection' : t.phase === 'mid-body' ? 'mid-body' : 'before the response headers'
  const direct = seen !== null && seen.peer.endsWith(`:${s.localPort ?? -1}`)
  const fp = fingerprint(s)
  let hop: string | null = null
  let by: string
  if (direct && (t.kind === 'hung' || t.phase === 'connection' || fp?.maker !== true)) {
    hop = 'target'
    by = 'no hop in between: the target saw the client\'s own connection'
  } else if (fp?.maker === true) {
    hop = fp.hop
    by = fp.by
  } else if (t.kind === 'cut' && (t.phase === 'connection' || (s.status === null && seen === null))) {
    hop = through?.hop ?? null
    by = `the hop the client connects to closed the client's connection${t.phase === 'connection' ? '' : ' before the request reached the target'}${through === null ? ' (it names itself in no header)' : ` (${through.by})`}`
  } else {
    by = `no hop named itself${fp === null ? '' : `; the response came through ${fp.hop} (${fp.by})`}`
  }
  return {
    atMs: t.kind === 'cut' ? t.atMs : null,
    when,
    clean: t.kind === 'cut' && t.clean,
    status: t.kind === 'cut' && t.phase === 'connection' ? null : s.status,
    client: clientSaw(t),
    curl: curlSaw(t),
    body: s.status !== null && s.headers['x-longhaul-probe'] === undefined ? s.body.slice(0, 300) : '',
    hop,
    by,
    target: describeTarget(seen, t, direct),
    seen,
  }
}

function clientSaw (t: Extract<TrialResult, { kind: 'cut' | 'hung' }>): string {
  const s = t.seen
  if (t.kind === 'hung') return `nothing ended the request within ${deadlineFor(t.ms)} ms (the probe gave up)`
  if (t.phase === 'connection') return 'the connection was closed while idle'
  const ending = s.rstCode !== null && s.ending === 'rst' ? `RST_STREAM ${h2CodeName(s.rstCode)}` : s.ending === 'rst' ? 'a TCP reset (RST)' : 'the connection closed (FIN)'
  if (t.phase === 'before-headers') {
    return s.status === null ? `no response: ${ending}` : `HTTP ${s.status} ${s.statusText ?? ''}`.trim() + (s.headers['x-longhaul-probe'] === undefined ? ' from a hop' : '')
  }
  if (t.clean) return `HTTP 200, then the body ended cleanly${s.rstCode === 0 ? ' (RST_STREAM NO_ERROR)' : ''} without the target's end event: a truncation no client can tell from a complete answer`
  return `HTTP 200, then ${ending} before the end of the body`
}

/** The same failure as curl's exit code and message (what users paste into issues). */
function curlSaw (t: Extract<TrialResult, { kind: 'cut' | 'hung' }>): string {
  const s = t.seen
  if (t.kind === 'hung') return 'curl: (28) Operation timed out'
  if (t.phase === 'connection') return 'the next request on it: curl: (52) Empty reply from server, or (56) Connection reset by peer, unless the client notices the close first'
  if (s.rstCode !== null && s.ending === 'rst') return `curl: (92) HTTP/2 stream 1 was not closed cleanly: ${h2CodeName(s.rstCode)} (err ${s.rstCode})`
  if (s.status === null) return s.ending === 'rst' ? 'curl: (56) Recv failure: Connection reset by peer' : 'curl: (52) Empty reply from server'
  if (t.phase === 'before-headers') return `exit 0 with the error page; curl -f: (22) The requested URL returned error: ${s.status}`
  if (t.clean) return 'exit 0: curl saw a complete response'
  return s.ending === 'rst' ? 'curl: (56) Recv failure: Connection reset by peer' : 'curl: (18) transfer closed with outstanding read data remaining'
}

function describeTarget (seen: ProbeSeen | null, t: Extract<TrialResult, { kind: 'cut' | 'hung' }>, direct: boolean): string {
  if (seen === null) return 'the request never reached the target: a hop in front answered it (or held it) by itself'
  if (t.kind === 'cut' && t.phase === 'connection') {
    if (seen.connectionClosedAfterMs === null) return 'the target\'s connection from the hop in front is still open (that hop pools its own connections)'
    if (direct) return `the target closed the client's connection itself (its own keep-alive), ${seen.connectionClosedAfterMs} ms after the request`
    return `the target's connection from the hop in front was closed by ${seen.connectionClosedBy === 'target' ? 'the target' : 'that hop'} ${seen.connectionClosedAfterMs} ms after the request (a different connection from the client's)`
  }
  if (seen.end === 'completed') return `the target finished its answer ${seen.endedAfterMs} ms after the request arrived: the cut came after the app's own end`
  if (seen.end === 'cancelled') {
    if (seen.connectionClosedBy === 'target') return `the target closed the connection itself ${seen.endedAfterMs} ms after the request arrived: the app's own end`
    return `the hop in front closed the target's connection ${seen.endedAfterMs} ms after the request arrived, before the answer was finished: the cut was in front of the app`
  }
  return 'the target was still answering when the client saw the cut: the cut was in front of the app'
}

/**
 * A cut that names no hop, at the same time as one that does, is most likely the same timer
 * (nginx's proxy_read_timeout and HAProxy's timeout server govern both the first byte and the
 * silences after it).
 */
function attributeByTime (limits: MeasuredLimit[]): void {
  for (const m of limits) {
    if (m.cut === null || m.cut.hop !== null || m.ms === null || m.cut.when !== 'mid-body') continue
    const twin = limits.find((o) => o !== m && o.ms !== null && o.cut?.hop != null && o.cut.hop !== 'target' && Math.abs(o.ms - m.ms!) <= toleranceMs(m.ms!) && o.cut.seen !== null)
    if (twin === undefined) continue
    m.cut.hop = twin.cut!.hop
    m.cut.by = `likely ${twin.cut!.hop}: its ${twin.title} cut came at the same time (${twin.cut!.by}), one timer for both; ${m.cut.by}`
  }
}

export type { Seen }
