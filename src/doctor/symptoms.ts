// What the user will see, in the words users paste (SCENARIOS.md, reference/user-pains.md): the
// client at the head of the chain speaks its own dialect when its preset knows it.
import type { Chain, FindingValue, Hop } from './model.ts'
import type { ClientView } from './presets/types.ts'
import type { Property } from './properties.ts'
import { fmt } from './format.ts'

const GENERIC: Required<ClientView> = {
  streamCut: '`curl: (92) HTTP/2 stream 1 was not closed cleanly: INTERNAL_ERROR (err 2)`, `net::ERR_HTTP2_PROTOCOL_ERROR 200 (OK)` or `curl: (18) transfer closed with outstanding read data remaining`',
  emptyReply: '`curl: (52) Empty reply from server`; Python requests: `ConnectionError: (\'Connection aborted.\', BadStatusLine("\'\'",))`',
  reset: '`Error: socket hang up` / `read ECONNRESET`, `Connection reset by peer`, `Broken pipe`'
}

/** What the client (the first hop) shows for this kind of failure. */
export function clientSees (chain: Chain, kind: keyof ClientView): string {
  const client = chain.hops[0]!
  const own = client.preset?.sees?.[kind]
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

/** Where a hop's value came from, in one line. */
export function provenance (hop: Hop, property: Property): string {
  const value = hop.values[property]
  if (value === undefined) return 'unknown'
  const who = value.origin === 'preset' ? `preset ${hop.preset!.name}` : value.origin === 'set' ? `set at ${value.source}` : `config ${hop.config}`
  return `${who}: ${value.setting}${value.confirmed ? '' : ' (unconfirmed)'}`
}

export function hopValue (hop: Hop, property: Property): FindingValue {
  const ms = hop.values[property]?.ms
  return { ms: ms ?? null, text: fmt(ms), from: provenance(hop, property) }
}

export function workloadValue (ms: number): FindingValue {
  return { ms, text: fmt(ms), from: 'workload' }
}
