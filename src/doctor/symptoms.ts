// What the user will see, in the words users paste (SCENARIOS.md, reference/user-pains.md): the
// client at the head of the chain speaks its own dialect when its preset knows it.
import type { Chain, FindingValue, Hop, Value } from './model.ts'
import type { ClientView } from './presets/types.ts'
import type { Property } from './properties.ts'
import { fmt } from './format.ts'

const GENERIC: Required<ClientView> = {
  streamCut: '`curl: (92) HTTP/2 stream 1 was not closed cleanly: INTERNAL_ERROR (err 2)`, `net::ERR_HTTP2_PROTOCOL_ERROR 200 (OK)` or `curl: (18) transfer closed with outstanding read data remaining`',
  emptyReply: '`curl: (52) Empty reply from server`; Python requests: `ConnectionError: (\'Connection aborted.\', BadStatusLine("\'\'",))`',
  reset: '`Error: socket hang up` / `read ECONNRESET`, `Connection reset by peer`, `Broken pipe`'
}

/** What the client (the first hop) shows for this kind of failure; a stream cut behind a hop that hides cuts (`from`: the cutting hop's index) looks like that hop makes it look. */
export function clientSees (chain: Chain, kind: keyof ClientView, from = chain.hops.length): string {
  const client = chain.hops[0]!
  if (kind === 'streamCut') {
    const hider = chain.hops.slice(1, from).find((h) => h.symptom !== null)
    if (hider !== undefined) return `${client.name} sees ${hider.symptom} (${hider.name} turns the cut into that: the worst case, a truncated answer that looks complete)`
  }
  const own = (kind === 'streamCut' ? client.symptom : null) ?? client.preset?.sees?.[kind]
  return `${client.name} sees ${own ?? GENERIC[kind]}`
}

/** What a hop's own limit does when it fires, when its preset says. */
export function firing (hop: Hop, property: Property): string | null {
  const value = hop.values[property]
  if (value === undefined || value.symptom === null) return null
  // Preset symptoms of unlimited settings read "when set: …"; here the limit is set.
  return `${hop.name}: ${value.symptom.replace(/^when set: /, '')}`
}

export function join (...parts: Array<string | null | undefined | false>): string {
  return parts.filter((p): p is string => typeof p === 'string' && p !== '').join('; ')
}

/** Where a value came from, in one line: the preset (and its mode), the set: line, the longhaul config, or the FILE:LINE it was read from. */
export function origin (hop: Hop, value: Value): string {
  const who = {
    preset: `preset ${hop.preset?.name ?? '?'}${hop.mode === null ? '' : ` (mode ${hop.mode})`}`,
    set: `set at ${value.source}`,
    config: `config ${hop.config}`,
    file: `${value.source}`
  }[value.origin]
  return `${who}: ${value.setting}${value.confirmed ? '' : ' (unconfirmed)'}`
}

/** Where a hop's value came from, in one line. */
export function provenance (hop: Hop, property: Property): string {
  const value = hop.values[property]
  return value === undefined ? 'unknown' : origin(hop, value)
}

export function hopValue (hop: Hop, property: Property): FindingValue {
  const ms = hop.values[property]?.ms
  return { ms: ms ?? null, text: fmt(ms), from: provenance(hop, property) }
}

export function workloadValue (ms: number): FindingValue {
  return { ms, text: fmt(ms), from: 'workload' }
}
