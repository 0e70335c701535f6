// `--chain`: each measured limit beside the doctor's prediction for the same chain, read with the
// doctor's own loader (loadChain), and every difference flagged: a measured limit that the chain
// file does not predict is configuration that is not in force (or not in the file).
// The client (first hop) and the app (last hop) are left out: the probe is the client, and the
// probe target stands in for the app.
import { loadChain } from '../doctor/resolve.ts'
import type { Chain, Hop } from '../doctor/model.ts'
import type { Property } from '../doctor/properties.ts'
import { toleranceMs } from './search.ts'
import type { LimitName } from './trial.ts'
import type { MeasuredLimit, ProbeReport } from './run.ts'

export interface Prediction {
  /** null: unlimited; undefined: the chain file says nothing about it. */
  ms: number | null | undefined
  hop: string | null
  setting: string | null
  source: string | null
}

export interface Comparison {
  limit: LimitName
  title: string
  measured: { ms: number | null, status: MeasuredLimit['status'], hop: string | null }
  predicted: Prediction
  agree: boolean | null
  /** One sentence: the difference, or why there is no comparison. */
  note: string
}

export interface ChainComparison {
  file: string
  comparisons: Comparison[]
  differences: number
}

/** The properties of a hop that can end each measured phase. */
function candidates (hop: Hop, limit: LimitName): Property[] {
  switch (limit) {
    case 'firstByteTimeout':
      return hop.preset?.streamIdleAfterHeaders === true ? ['firstByteTimeout', 'requestTimeout'] : ['firstByteTimeout', 'requestTimeout', 'streamIdleTimeout']
    case 'streamIdleTimeout': return ['streamIdleTimeout', 'requestTimeout']
    case 'requestTimeout': return ['requestTimeout']
    case 'serverIdleTimeout': return ['serverIdleTimeout']
    case 'bodyIdleTimeout': return []
  }
}

const UNKNOWN: Prediction = { ms: undefined, hop: null, setting: null, source: null }

/** The shortest limit among the hops between the client and the app, with the hop it belongs to. */
export function predict (chain: Chain, limit: LimitName): Prediction {
  const middle = chain.hops.slice(1, -1)
  // The idle connection measured is the client's own: only the hop it connects to keeps it.
  const hops = limit === 'serverIdleTimeout' ? middle.filter((h) => h.preset?.passThrough !== true).slice(0, 1) : middle
  let best: Prediction = UNKNOWN
  for (const hop of hops) {
    for (const property of candidates(hop, limit)) {
      const value = hop.values[property]
      if (value === undefined) continue
      // A heartbeat sent by a hop behind this one keeps its silence timer from firing.
      if (limit === 'streamIdleTimeout' && property === 'streamIdleTimeout' && value.ms !== null && heartbeatBehind(chain, hop, value.ms)) continue
      const candidate = { ms: value.ms, hop: hop.name, setting: value.setting, source: value.source }
      if (best.ms === undefined || (value.ms !== null && (best.ms === null || value.ms < best.ms))) best = candidate
    }
  }
  return best
}

function heartbeatBehind (chain: Chain, hop: Hop, idleMs: number): boolean {
  return chain.hops.slice(hop.index + 1, -1).some((h) => {
    const hb = h.values.heartbeat?.ms
    return hb !== undefined && hb !== null && hb < idleMs
  })
}

/** The chain hop a fingerprinted product is, when exactly one hop's preset names it. */
export function chainHopOf (chain: Chain, product: string | null): string | null {
  if (product === null) return null
  const p = product.toLowerCase()
  const matches = chain.hops.slice(1, -1).filter((h) => {
    const preset = h.preset?.name.toLowerCase()
    return preset !== undefined && (preset === p || preset.includes(p) || (p === 'gclb' && preset.startsWith('gcp')))
  })
  return matches.length === 1 ? matches[0]!.name : null
}

const fmtMs = (ms: number | null | undefined): string => ms === undefined ? 'unknown' : ms === null ? 'none' : `${(ms / 1000).toFixed(2)} s`

function compare (chain: Chain, m: MeasuredLimit, maxMs: number): Comparison {
  const predicted = predict(chain, m.name)
  const hop = chainHopOf(chain, m.cut?.hop ?? null) ?? m.cut?.hop ?? null
  const base = { limit: m.name, title: m.title, measured: { ms: m.ms, status: m.status, hop }, predicted }
  const said = predicted.hop === null ? '' : ` (${predicted.hop}: ${predicted.setting})`
  if (m.status === 'unfinished') return { ...base, agree: null, note: `not measured: ${m.reason ?? 'unfinished'}` }
  if (m.name === 'bodyIdleTimeout') return { ...base, agree: null, note: 'the doctor does not model upload silence (nginx client_body_timeout, longhaul downstream.bodyIdleTimeout): no prediction to compare' }
  if (predicted.ms === undefined) {
    return m.status === 'found'
      ? { ...base, agree: false, note: `measured ${fmtMs(m.ms)}, but the chain file predicts no such limit: a setting the chain file does not know is in force` }
      : { ...base, agree: null, note: 'the chain file says nothing about it; none measured up to --max' }
  }
  if (m.status === 'none') {
    if (predicted.ms === null || predicted.ms > maxMs) return { ...base, agree: true, note: `predicted ${fmtMs(predicted.ms)}${said}, none measured up to ${fmtMs(maxMs)}` }
    return { ...base, agree: false, note: `predicted a cut at ${fmtMs(predicted.ms)}${said}, but nothing was cut up to ${fmtMs(maxMs)}: that setting is not in force` }
  }
  const ms = m.ms!
  if (predicted.ms === null || Math.abs(ms - predicted.ms) > Math.max(toleranceMs(ms), m.toleranceMs ?? 0)) {
    return { ...base, agree: false, note: `measured ${fmtMs(ms)}${hop === null ? '' : ` (cut by ${hop})`}, predicted ${fmtMs(predicted.ms)}${said}: the configuration in force is not the one in the chain file` }
  }
  if (hop !== null && predicted.hop !== null && chain.hops.some((h) => h.name === hop) && hop !== predicted.hop) {
    return { ...base, agree: false, note: `the value agrees (${fmtMs(ms)}), but ${hop} cut it, not ${predicted.hop}${said}` }
  }
  return { ...base, agree: true, note: `measured ${fmtMs(ms)}, predicted ${fmtMs(predicted.ms)}${said}` }
}

export async function compareWithChain (file: string, report: ProbeReport): Promise<ChainComparison> {
  const chain = await loadChain(file)
  const comparisons = report.limits.map((m) => compare(chain, m, report.maxMs))
  // With the chain in hand, a cut no hop named itself is put on the one hop whose value matches.
  for (const c of comparisons) {
    const m = report.limits.find((l) => l.name === c.limit)!
    if (m.cut !== null && c.measured.hop === null && c.agree === true && c.predicted.hop !== null) {
      c.measured.hop = c.predicted.hop
      m.cut.by = `by the chain file: the limit it predicts at that value is ${c.predicted.hop}'s ${c.predicted.setting}; ${m.cut.by}`
      m.cut.hop = c.predicted.hop
    }
  }
  return { file, comparisons, differences: comparisons.filter((c) => c.agree === false).length }
}
