// The rules (issue 7): each reads the resolved chain and returns its findings. A value that is
// unknown (absent) never fires a rule: the doctor reports what it knows, and the per-hop table
// shows what it does not.
import { fmt, sec } from './format.ts'
import { AUTO_IDLE_NOTE } from './longhaul.ts'
import { SEVERITY_RANK, type Chain, type Finding, type FindingValue, type Hop, type Value, type Workload } from './model.ts'
import type { Property } from './properties.ts'
import type { RetryTrigger } from './presets/types.ts'
import { clientSees, firing, hopValue, join, provenance, workloadValue } from './symptoms.ts'

export type Rule = (chain: Chain) => Finding[]

/** Outer hops should wait this much longer than the hop behind them (SCENARIOS story 2: 1-5 s). */
const NESTING_MARGIN_MS = sec(1)
/** A silence this long with no heartbeat anywhere is worth a word (W3C EventSource advice: a comment every ~15 s). */
const LONG_SILENCE_MS = sec(15)

const finite = (hop: Hop, property: Property): number | null => hop.values[property]?.ms ?? null

/** The component's name for a value's setting, without what `set:` wrote, plus where to change it. */
function named (value: Value): string {
  // A value read from a file is named as the file writes it, without its value, and where it is.
  if (value.origin === 'file') return `${value.setting.replace(/(:\s*|\s+)[^\s:]+$/, '')} (${value.source})`
  const setting = value.setting.replace(/ = .*$/, '')
  return value.how === null ? setting : `${setting} (${value.how})`
}

/** How many times the client sends the request again after this failure (0: it does not). */
function retriesOf (chain: Chain, triggers: readonly RetryTrigger[]): number {
  const r = chain.workload.retries
  return r === null || !triggers.some((t) => r.on.includes(t)) ? 0 : r.count
}

/** What the client's own retries make of a failure it retries on: the same cut again, the work again. */
function retried (chain: Chain, count: number): string | false {
  if (count === 0) return false
  const n = count + 1
  return `${chain.hops[0]!.name} retries it ${count === 1 ? 'once' : `${count} times`} (${chain.workload.retries!.from}): the user waits for ${n} cuts, and the work behind is done ${n} times for nobody`
}

/** What a cut by this hop is, to a client that retries: its own timeout, a 5xx before any response byte, nothing it retries once a stream has started. */
function cutTriggers (hop: Hop, midStream: boolean): RetryTrigger[] {
  if (hop.index === 0) return ['timeout']
  return midStream ? [] : [502, 503, 504]
}

/** The silence a hop's idle timer sees: a timer that also waits for the response headers sees the wait for the first byte too. */
function silenceFor (hop: Hop, w: Workload): number {
  return hop.preset?.streamIdleAfterHeaders === true || w.firstByteMs === null ? w.maxSilenceMs : Math.max(w.maxSilenceMs, w.firstByteMs)
}

/** Where the example silence sits on the timeline: a streaming answer pauses a fifth of the way in. */
export function silenceStartMs (w: Workload): number {
  const start = w.firstByteMs ?? 0
  return w.streaming ? Math.min(w.durationMs - w.maxSilenceMs, start + Math.round((w.durationMs - start) / 5)) : 0
}

/** The limit that bounds how long a hop waits for the whole answer: for a non-streaming one, the first byte is the end. */
function waitLimit (hop: Hop, w: Workload): { ms: number, property: Property } | null {
  const request = finite(hop, 'requestTimeout')
  const firstByte = w.streaming ? null : finite(hop, 'firstByteTimeout')
  if (request === null && firstByte === null) return null
  if (firstByte !== null && (request === null || firstByte < request)) return { ms: firstByte, property: 'firstByteTimeout' }
  return { ms: request!, property: 'requestTimeout' }
}

export const idleNesting: Rule = (chain) => {
  const findings: Finding[] = []
  const { hops, workload: w } = chain
  for (let s = 1; s < hops.length; s++) {
    const server = hops[s]!
    const b = server.values.serverIdleTimeout
    if (b === undefined || b.ms === null) continue
    // A layer-4 hop forwards the connection: the pool that matters is the one in front of it.
    let c = s - 1
    while (c > 0 && hops[c]!.passThrough) c--
    const client = hops[c]!
    const a = client.values.clientIdleTimeout
    if (a === undefined || (a.ms !== null && a.ms < b.ms)) continue
    // A browser sends the request again on a new connection when a reused one fails before any byte: nobody sees the race.
    if (c === 0 && client.preset?.resendsOnStaleConnection !== undefined) continue
    const through = hops.slice(c + 1, s).map((h) => h.name)
    const quiet = w.idleBetweenRequestsMs !== null && w.idleBetweenRequestsMs < b.ms
    const reuser = c === 0 ? clientSees(chain, 'reset') : `${client.name} answers ${a.symptom ?? '502 or 503'}`
    findings.push({
      rule: 'idle-nesting',
      severity: quiet ? 'warning' : 'error',
      hops: [client.name, ...through, server.name],
      problem: `${client.name} keeps idle connections to ${server.name}${through.length > 0 ? ` (through ${through.join(', ')})` : ''} for ${fmt(a.ms)}, but ${server.name} closes them after ${fmt(b.ms)}: ${client.name} will reuse connections that are already closed${quiet ? ` (rarely: connections sit idle ${fmt(w.idleBetweenRequestsMs)} between requests, less than ${fmt(b.ms)}, so only after quiet periods)` : ''}`,
      values: { [`${client.name}.clientIdleTimeout`]: hopValue(client, 'clientIdleTimeout'), [`${server.name}.serverIdleTimeout`]: hopValue(server, 'serverIdleTimeout') },
      symptom: `random failures on reused connections, mostly after quiet periods: ${reuser}`,
      fix: join(
        'each client\'s idle keep-alive must be shorter than its server\'s',
        !a.fixed && `set ${client.name}'s ${named(a)} below ${fmt(b.ms)} (e.g. ${fmt(Math.max(0, b.ms - Math.max(sec(1), Math.round(b.ms / 10))))})`,
        !b.fixed && a.ms !== null && `${a.fixed ? '' : 'or '}raise ${server.name}'s ${named(b)} above ${fmt(a.ms)}`,
        a.fixed && b.fixed && 'neither side can be changed: put a hop whose pool you control between them',
        a.note === AUTO_IDLE_NOTE && `longhaul's ${AUTO_IDLE_NOTE}`,
        'a request that fails on a reused connection before any response byte can be retried safely (longhaul does this for idempotent methods)'
      )
    })
  }
  return findings
}

export const totalCut: Rule = (chain) => {
  const findings: Finding[] = []
  const w = chain.workload
  for (const hop of chain.hops) {
    const limit = waitLimit(hop, w)
    if (limit === null || limit.ms >= w.durationMs) continue
    const value = hop.values[limit.property]!
    const what = limit.property === 'requestTimeout' ? 'ends every request' : 'gives up waiting for the response headers'
    const isClient = hop.index === 0
    const again = retriesOf(chain, cutTriggers(hop, w.streaming && limit.ms > (w.firstByteMs ?? 0)))
    findings.push({
      rule: 'total-cut',
      severity: 'error',
      hops: [hop.name],
      problem: `${hop.name} ${what} at ${fmt(limit.ms)} (${value.setting.replace(/ = .*$/, '')}); the workload needs ${fmt(w.durationMs)}`,
      values: { [`${hop.name}.${limit.property}`]: hopValue(hop, limit.property), 'workload.duration': workloadValue(w.durationMs) },
      symptom: join(
        firing(hop, limit.property) ?? (isClient ? `${hop.name} gives up by itself` : `${hop.name} answers 504 Gateway Timeout`),
        w.streaming && !isClient && `${fmt(limit.ms)} into every stream, ${clientSees(chain, 'streamCut', hop.index)}`,
        !isClient && 'the app behind goes on working for nobody',
        retried(chain, again)
      ),
      fix: join(
        `raise ${hop.name}'s ${named(value)} above ${fmt(w.durationMs)} (and above every hop behind it, plus 1-5 s)`,
        w.streaming && !isClient && limit.property === 'requestTimeout' && 'for a stream, a total limit can be none (unlimited) when a stream idle limit bounds the silence'
      ),
      cutAtMs: limit.ms,
      retries: again
    })
  }
  return findings
}

export const silenceCut: Rule = (chain) => {
  const findings: Finding[] = []
  const w = chain.workload
  chain.hops.forEach((hop, i) => {
    const silence = silenceFor(hop, w)
    const idle = hop.values.streamIdleTimeout
    if (idle === undefined || idle.ms === null || idle.ms > silence) return
    // Its first-byte limit covers the wait for a non-streaming answer (total-cut reports it).
    if (!w.streaming && hop.preset?.streamIdleAfterHeaders === true) return
    const behind = chain.hops.slice(i + 1)
    // Heartbeats flow once a response has started: they do not cover the wait for its first byte.
    if (w.streaming && silence === w.maxSilenceMs && behind.some((h) => { const hb = finite(h, 'heartbeat'); return hb !== null && hb < idle.ms! })) return
    const tooSlow = behind.find((h) => finite(h, 'heartbeat') !== null)
    const inFront = chain.hops.slice(0, i + 1).find((h) => finite(h, 'heartbeat') !== null)
    const again = retriesOf(chain, cutTriggers(hop, w.streaming && silence === w.maxSilenceMs))
    findings.push({
      rule: 'silence-cut',
      severity: 'error',
      hops: [hop.name],
      problem: join(
        w.streaming
          ? `${hop.name} cuts a response that stays silent for ${fmt(idle.ms)} (${idle.setting.replace(/ = .*$/, '')}); the workload goes silent for up to ${fmt(silence)}${silence > w.maxSilenceMs ? ' before its first byte (this timer also waits for the response headers)' : ''}`
          : `${hop.name} cuts a response that stays silent for ${fmt(idle.ms)} (${idle.setting.replace(/ = .*$/, '')}); this answer comes only at the end, after ${fmt(silence)}`,
        tooSlow !== undefined && `the heartbeat of ${tooSlow.name} (every ${fmt(finite(tooSlow, 'heartbeat'))}) is not shorter than this limit`,
        inFront !== undefined && `the heartbeat of ${inFront.name} does not help: heartbeats protect only the hops between the injector and the client`
      ),
      values: { [`${hop.name}.streamIdleTimeout`]: hopValue(hop, 'streamIdleTimeout'), [!w.streaming ? 'workload.duration' : silence > w.maxSilenceMs ? 'workload.firstByte' : 'workload.maxSilence']: workloadValue(silence) },
      symptom: join(
        firing(hop, 'streamIdleTimeout') ?? `${hop.name} ends the response`,
        w.streaming && hop.index > 0 && silence === w.maxSilenceMs && `mid-stream, ${clientSees(chain, 'streamCut', hop.index)}`,
        retried(chain, again)
      ),
      fix: join(
        `raise ${hop.name}'s ${named(idle)} above ${fmt(silence)}`,
        w.streaming && silence > w.maxSilenceMs
          ? 'or have the app send the response headers and an SSE comment at once, before the model\'s first token: heartbeats flow only once a response has started'
          : w.streaming
          ? `or have a hop behind ${hop.name} send heartbeats more often than every ${fmt(idle.ms)} (an SSE comment \`: keepalive\` every ~15 s from the app, or longhaul routes[].sse.heartbeat)`
          : 'or stream: send the response headers early and the body as it is made'
      ),
      cutAtMs: (silence > w.maxSilenceMs ? 0 : silenceStartMs(w)) + idle.ms,
      retries: again
    })
  })
  return findings
}

export const firstByteCut: Rule = (chain) => {
  const w = chain.workload
  if (!w.streaming || w.firstByteMs === null) return []
  const wait = w.firstByteMs
  return chain.hops.flatMap((hop): Finding[] => {
    const limit = finite(hop, 'firstByteTimeout')
    if (limit === null || limit > wait) return []
    const value = hop.values.firstByteTimeout!
    const again = retriesOf(chain, cutTriggers(hop, false))
    return [{
      rule: 'first-byte-cut',
      severity: 'error',
      hops: [hop.name],
      problem: `${hop.name} gives up on a response whose first byte has not come after ${fmt(limit)} (${value.setting.replace(/ = .*$/, '')}); the stream's first byte comes after ${fmt(wait)}`,
      values: { [`${hop.name}.firstByteTimeout`]: hopValue(hop, 'firstByteTimeout'), 'workload.firstByte': workloadValue(wait) },
      symptom: join(firing(hop, 'firstByteTimeout') ?? (hop.index === 0 ? `${hop.name} gives up by itself` : `${hop.name} answers 504 Gateway Timeout`), 'before a single token reaches the client', retried(chain, again)),
      fix: join(
        `raise ${hop.name}'s ${named(value)} above ${fmt(wait)}`,
        value.fixed ? 'it cannot be changed: send the response headers (and a first SSE comment) at once, so the first byte comes early' : 'or have the app send the response headers (and an SSE comment) at once, before the model\'s first token'
      ),
      cutAtMs: limit,
      retries: again
    }]
  })
}

export const uploadCut: Rule = (chain) => {
  const up = chain.workload.upload
  if (up === null) return []
  return chain.hops.flatMap((hop): Finding[] => {
    const limit = finite(hop, 'uploadTimeout')
    if (limit === null || limit >= up.ms) return []
    const value = hop.values.uploadTimeout!
    const again = retriesOf(chain, ['reset', 408])
    return [{
      rule: 'upload-cut',
      severity: 'error',
      hops: [hop.name],
      problem: `${hop.name} must receive the whole request within ${fmt(limit)} (${value.setting.replace(/ = .*$/, '')}); the upload takes ${fmt(up.ms)} (${Math.round(up.bytes / 1024 / 1024)} MiB at ${Math.round(up.bytesPerSecond / 1024)} KiB/s)`,
      values: { [`${hop.name}.uploadTimeout`]: hopValue(hop, 'uploadTimeout'), 'workload.upload': workloadValue(up.ms) },
      symptom: join(firing(hop, 'uploadTimeout') ?? `${hop.name} closes the connection while the body still arrives`, `every upload slower than ${Math.round(up.bytes / limit * 1000 / 1024)} KiB/s fails`, retried(chain, again)),
      fix: `raise ${hop.name}'s ${named(value)} above ${fmt(up.ms)} (a gap limit between body chunks, such as longhaul's downstream.bodyIdleTimeout, still catches a stalled client)`,
      cutAtMs: limit,
      retries: again
    }]
  })
}

export const timeoutNesting: Rule = (chain) => {
  const findings: Finding[] = []
  const { hops, workload: w } = chain
  for (let i = 0; i < hops.length - 1; i++) {
    const outer = hops[i]!
    const o = waitLimit(outer, w)
    // total-cut already reports a hop that cuts the workload itself.
    if (o === null || o.ms < w.durationMs) continue
    const inner = hops.slice(i + 1).find((h) => waitLimit(h, w) !== null)
    if (inner === undefined) continue
    const n = waitLimit(inner, w)!
    if (o.ms >= n.ms + NESTING_MARGIN_MS) continue
    findings.push({
      rule: 'timeout-nesting',
      severity: 'warning',
      hops: [outer.name, inner.name],
      problem: `${outer.name} gives up after ${fmt(o.ms)} while ${inner.name} still waits up to ${fmt(n.ms)}: on a slow request, ${outer.name} fails first and ${inner.name} and the app go on working for nobody`,
      values: { [`${outer.name}.${o.property}`]: hopValue(outer, o.property), [`${inner.name}.${n.property}`]: hopValue(inner, n.property) },
      symptom: join(firing(outer, o.property) ?? `${outer.name}'s timeout, not ${inner.name}'s, answers`, `the work behind ${outer.name} is wasted (a GPU or a worker busy for nobody)`),
      fix: join(
        `let ${outer.name} wait ${inner.name}'s limit plus 1-5 s (${fmt(n.ms + sec(1))}-${fmt(n.ms + sec(5))}), or lower ${inner.name}'s below ${fmt(o.ms - NESTING_MARGIN_MS)}`,
        'propagate the deadline so the work stops when nobody waits: longhaul sends x-longhaul-timeout-ms upstream (Envoy: x-envoy-expected-rq-timeout-ms, gRPC: grpc-timeout)'
      )
    })
  }
  return findings
}

export const writeTimeout: Rule = (chain) => {
  const w = chain.workload
  return chain.hops.flatMap((hop): Finding[] => {
    const limit = finite(hop, 'writeTimeout')
    if (limit === null || limit >= w.durationMs) return []
    const setting = hop.values.writeTimeout!.setting.replace(/ = .*$/, '')
    return [{
      rule: 'write-timeout',
      severity: 'error',
      hops: [hop.name],
      problem: `${hop.name}'s ${setting} (${fmt(limit)}) is shorter than the workload (${fmt(w.durationMs)}): a write timeout does not stop the handler, it only spoils its answer`,
      values: { [`${hop.name}.writeTimeout`]: hopValue(hop, 'writeTimeout'), 'workload.duration': workloadValue(w.durationMs) },
      symptom: w.streaming
        ? `the stream is cut at ${fmt(limit)}: ${clientSees(chain, 'streamCut')}`
        : `the handler runs to the end and logs success, then nothing reaches the client: ${clientSees(chain, 'emptyReply')}`,
      fix: `raise or remove ${setting}; to bound slow handlers, use a timeout that answers at once (Go: http.TimeoutHandler) plus a request context the handler checks, so the work stops when nobody waits`,
      cutAtMs: w.streaming ? limit : w.durationMs
    }]
  })
}

export const terminationGrace: Rule = (chain) => {
  const deploy = chain.deploy
  if (deploy === null) return []
  const w = chain.workload
  const findings: Finding[] = []
  const delayHop = deploy.hops.reduce<Hop | null>((best, h) => (finite(h, 'drainDelay') ?? 0) > (best === null ? 0 : finite(best, 'drainDelay') ?? 0) ? h : best, null)
  const delay = delayHop === null ? 0 : finite(delayHop, 'drainDelay')!
  const pod = deploy.hops.map((h) => h.name)
  const killed = 'the proxy in front answers `502 Bad Gateway` (Knative queue-proxy: `error reverse proxying request` … `"error":"EOF"`; nginx: `upstream prematurely closed connection while reading upstream`) and streams break off'
  if (deploy.graceMs < delay + w.durationMs) {
    const values: Record<string, FindingValue> = { 'deploy.terminationGracePeriod': { ms: deploy.graceMs, text: fmt(deploy.graceMs), from: deploy.graceFrom }, 'workload.duration': workloadValue(w.durationMs) }
    if (delayHop !== null) values[`${delayHop.name}.drainDelay`] = hopValue(delayHop, 'drainDelay')
    findings.push({
      rule: 'termination-grace',
      severity: 'error',
      hops: pod,
      problem: `the pod of ${pod.join(' + ')} gets ${fmt(deploy.graceMs)} from SIGTERM to SIGKILL, but a request that arrives just before it stops taking traffic needs ${delayHop === null ? '' : `${fmt(delay)} (drain delay of ${delayHop.name}) + `}${fmt(w.durationMs)}`,
      values,
      symptom: `502 during every rollout: requests still running when the pod is killed are cut; ${killed}`,
      fix: `set terminationGracePeriodSeconds to at least ${Math.ceil((delay + w.durationMs + sec(5)) / 1000)} (drain delay + workload + a margin), derived from the drain settings so the numbers agree`
    })
  }
  for (const hop of deploy.hops) {
    const drain = finite(hop, 'drainTimeout')
    if (drain === null || drain >= w.durationMs) continue
    const setting = hop.values.drainTimeout!.setting.replace(/ = .*$/, '')
    findings.push({
      rule: 'termination-grace',
      severity: 'error',
      hops: [hop.name],
      problem: `${hop.name} stops waiting for in-flight requests ${fmt(drain)} into its shutdown (${setting}); the workload takes ${fmt(w.durationMs)}`,
      values: { [`${hop.name}.drainTimeout`]: hopValue(hop, 'drainTimeout'), 'workload.duration': workloadValue(w.durationMs) },
      symptom: join(firing(hop, 'drainTimeout'), `during every rollout, ${killed}`),
      fix: `raise ${hop.name}'s ${setting} above ${fmt(w.durationMs)}, and the pod's grace period with it`
    })
  }
  return findings
}

export const deadPeer: Rule = (chain) => {
  const w = chain.workload
  if (!w.streaming || w.maxSilenceMs < LONG_SILENCE_MS) return []
  if (chain.hops.some((h) => finite(h, 'heartbeat') !== null)) return []
  return [{
    rule: 'dead-peer',
    severity: 'info',
    hops: chain.hops.map((h) => h.name),
    problem: `no hop sends heartbeats while the stream is silent (up to ${fmt(w.maxSilenceMs)}): nobody on the path can tell a dead peer from a thinking model`,
    values: { 'workload.maxSilence': workloadValue(w.maxSilenceMs) },
    symptom: 'a peer that vanishes without a FIN or RST (a node, a NAT entry) is noticed only when some idle timer fires, or after ~15 minutes of TCP retransmission once data is sent (tcp_retries2=15: 924.6 s); TCP keep-alive takes over 2 hours (7200 s + 9 × 75 s)',
    fix: 'inject a heartbeat (an SSE comment `: keepalive` every ~15 s) at the hop nearest the app that can: the app itself, or longhaul routes[].sse.heartbeat; it must be shorter than every stream idle limit in front of it'
  }]
}

export const unboundedWait: Rule = (chain) => {
  const waiters = chain.hops.slice(0, -1)
  const limits: Property[] = ['requestTimeout', 'firstByteTimeout', 'streamIdleTimeout', 'writeTimeout']
  if (waiters.some((h) => limits.some((p) => finite(h, p) !== null))) return []
  const unknown = waiters.flatMap((h) => limits.filter((p) => h.values[p] === undefined).map((p) => `${h.name}.${p}`))
  const w = chain.workload
  return [{
    rule: 'unbounded-wait',
    severity: 'warning',
    hops: waiters.map((h) => h.name),
    problem: `no hop is known to bound a stuck request: a backend that hangs holds the client, every proxy's connection and the app's worker until TCP gives up${unknown.length > 0 ? ` (unknown: ${unknown.join(', ')})` : ''}`,
    values: Object.fromEntries(waiters.flatMap((h) => limits.filter((p) => h.values[p] !== undefined).map((p) => [`${h.name}.${p}`, hopValue(h, p)]))),
    symptom: 'requests hang with no error at all, and connections and workers pile up behind them',
    fix: `give the hop nearest the app limits that fit the workload: a stream idle limit above ${fmt(w.maxSilenceMs)}${w.streaming ? ` and, if you want one, a total above ${fmt(w.durationMs)}` : ` or a first-byte limit above ${fmt(w.durationMs)}`}`
  }]
}

export const presetPitfall: Rule = (chain) => chain.pitfalls.map((hit): Finding => {
  const hop = chain.hops.find((h) => h.name === hit.hop)!
  const current = hop.values[hit.meant]
  const holds = current === undefined ? '' : `${hit.meant} stays ${fmt(current.ms)} (${provenance(hop, hit.meant)})`
  const severity = hit.kind === 'conditional' ? 'info' : 'warning'
  // An imported setting is named as its file writes it, with FILE:LINE; a set: key as the chain file writes it.
  const written = hit.where === undefined ? `set: { ${hit.key}: ${fmt(hit.written)} }` : `${hit.key} (${hit.where})`
  const problems = {
    ignored: `${hit.hop}: ${written} does nothing: ${hit.what}`,
    fixed: `${hit.hop}: set: { ${hit.key}: ${fmt(hit.written)} } is ignored: ${hit.what}`,
    capped: `${hit.hop}: set: { ${hit.key}: ${fmt(hit.written)} }: ${hit.what}`,
    conditional: `${hit.hop}: set: { ${hit.key}: ${fmt(hit.written)} }: ${hit.what}`
  }
  return {
    rule: 'preset-pitfall',
    severity,
    hops: [hit.hop],
    problem: problems[hit.kind],
    values: { [hit.where === undefined ? `${hit.hop}.set.${hit.key}` : `${hit.hop}: ${hit.key}`]: { ms: hit.written, text: fmt(hit.written), from: `${hit.where ?? 'set'}${hit.confirmed ? '' : ' (pitfall unconfirmed)'}; ${hit.source}` }, ...(current === undefined ? {} : { [`${hit.hop}.${hit.meant}`]: hopValue(hop, hit.meant) }) },
    symptom: hit.kind === 'ignored' || hit.kind === 'fixed'
      ? join('the setting is accepted without a word and changes nothing', holds)
      : join(hit.raisable ? 'the value holds only after the change named in the fix' : 'the component uses its own limit instead', holds),
    fix: hit.works
  }
})

export const RULES: Readonly<Record<string, Rule>> = {
  'idle-nesting': idleNesting,
  'total-cut': totalCut,
  'silence-cut': silenceCut,
  'timeout-nesting': timeoutNesting,
  'first-byte-cut': firstByteCut,
  'upload-cut': uploadCut,
  'write-timeout': writeTimeout,
  'termination-grace': terminationGrace,
  'dead-peer': deadPeer,
  'unbounded-wait': unboundedWait,
  'preset-pitfall': presetPitfall
}

/** Every finding of every rule, most severe first, then the earliest cut. */
export function diagnose (chain: Chain): Finding[] {
  const order = Object.keys(RULES)
  return Object.values(RULES).flatMap((rule) => rule(chain)).sort((a, b) =>
    SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] ||
    (a.cutAtMs ?? Infinity) - (b.cutAtMs ?? Infinity) ||
    order.indexOf(a.rule) - order.indexOf(b.rule))
}

/** The moment the request is first cut, and by which finding; null when nothing cuts it. */
export function cutPoint (findings: readonly Finding[]): Finding | null {
  return findings.filter((f) => f.severity === 'error' && f.cutAtMs !== undefined).sort((a, b) => a.cutAtMs! - b.cutAtMs!)[0] ?? null
}
