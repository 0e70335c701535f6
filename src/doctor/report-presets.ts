// `longhaul doctor --presets`: every preset with its values, the component's name for each
// setting and where the value was read; values with a single unverified source say so.
import { fmt } from './format.ts'
import { PRESETS } from './presets.ts'
import { PROPERTY_NAMES } from './properties.ts'
import { wrap } from './report-text.ts'
import type { Preset, PresetGroup, PresetValue } from './presets/types.ts'

const GROUPS: Readonly<Record<PresetGroup, string>> = {
  clients: 'Clients',
  servers: 'App servers',
  proxies: 'Proxies, ingress, mesh',
  clouds: 'Cloud load balancers, CDNs, platforms'
}

function allValues (): PresetValue[] {
  return PRESETS.flatMap((p) => [...Object.values(p.values), ...Object.values(p.modes ?? {}).flatMap((m) => Object.values(m.values ?? {}).filter((x): x is PresetValue => x !== null))])
}

export function presetCounts (): { presets: number, values: number, confirmed: number } {
  const values = allValues()
  return { presets: PRESETS.length, values: values.length, confirmed: values.filter((v) => v.confirmed).length }
}

function valueLines (p: Preset, values: Preset['values'], indent: string): string[] {
  const pad = ' '.repeat(32)
  const lines: string[] = []
  for (const property of PROPERTY_NAMES) {
    const value = values[property]
    if (value === undefined) continue
    const flags = [value.confirmed ? '' : 'UNCONFIRMED', value.fixed === true ? 'fixed' : '', value.cap === undefined ? '' : `cap ${fmt(value.cap.ms)}${value.cap.raisable ? ' (raisable)' : ''}`].filter((f) => f !== '')
    const follows = p.follows?.[property]
    lines.push(`${indent}${property.padEnd(22 - indent.length)} ${fmt(value.ms).padEnd(8)} ${wrap(`${value.setting}${follows === undefined ? '' : ` (follows ${follows})`}${flags.length > 0 ? ` [${flags.join(', ')}]` : ''}`, pad)}`)
    if (value.note !== undefined) lines.push(`${pad}${wrap(value.note, pad)}`)
    lines.push(`${pad}${wrap(`source: ${value.source}`, pad)}`)
  }
  return lines
}

function presetText (p: Preset): string {
  const pad = ' '.repeat(32)
  const lines = [`  ${p.name}: ${p.component}${p.passThrough === true ? ' [pass-through]' : ''}`, ...valueLines(p, p.values, '    ')]
  for (const [name, mode] of Object.entries(p.modes ?? {})) {
    const when = [name === p.defaultMode && 'default', name === p.streamingMode && 'default when streaming'].filter((x) => x !== false).join(', ')
    lines.push(`    mode ${name}${when === '' ? '' : ` (${when})`}: ${wrap(mode.description, '      ')}`)
    const removed = Object.entries(mode.values ?? {}).filter(([, x]) => x === null).map(([k]) => k)
    if (removed.length > 0) lines.push(`      ${wrap(`does not apply: ${removed.join(', ')}`, '      ')}`)
    lines.push(...valueLines(p, Object.fromEntries(Object.entries(mode.values ?? {}).filter(([, x]) => x !== null)), '      '))
    for (const note of mode.notes ?? []) lines.push(`      ${wrap(note, '      ')}`)
  }
  if (p.retries !== undefined) lines.push(`    ${wrap(`retries: ${p.retries.count}× on ${p.retries.on.join(', ')}${p.retries.source === undefined ? '' : ` (source: ${p.retries.source})`}`, '    ')}`)
  if (p.resendsOnStaleConnection !== undefined) lines.push(`    ${wrap(`resends a request that fails on a reused idle connection (source: ${p.resendsOnStaleConnection})`, '    ')}`)
  if (p.relaysCutAs !== undefined) lines.push(`    ${wrap(`a stream cut behind it reaches the client as ${p.relaysCutAs}`, '    ')}`)
  for (const o of p.other ?? []) {
    lines.push(`    ${'(other)'.padEnd(18)} ${fmt(o.ms).padEnd(8)} ${wrap(`${o.setting}: ${o.meaning}${o.confirmed ? '' : ' [UNCONFIRMED]'}`, pad)}`)
  }
  for (const [key, pitfall] of Object.entries(p.pitfalls ?? {})) {
    lines.push(`    ${`set: ${key}`.padEnd(27)} ${wrap(`ignored: ${pitfall.what}. Works: ${pitfall.works}. Source: ${pitfall.source}`, pad)}`)
  }
  for (const note of p.notes ?? []) lines.push(`    ${wrap(note, '    ')}`)
  return lines.join('\n')
}

export function presetsText (): string {
  const { presets, values, confirmed } = presetCounts()
  const out = [
    `${presets} presets, ${values} values (${confirmed} confirmed; UNCONFIRMED = one source, not re-read). none = unlimited.`,
    'Use a preset in a chain file as `preset: NAME` (and `mode: MODE`), and override any value with `set: { NAME: DURATION | none }`,',
    'NAME being a property or the component\'s own name for the setting (`proxy_read_timeout`, `timeoutSec`, `--timeout`).',
    ''
  ]
  for (const [group, title] of Object.entries(GROUPS) as Array<[PresetGroup, string]>) {
    out.push(title)
    for (const p of PRESETS.filter((x) => x.group === group)) out.push(presetText(p), '')
  }
  return out.join('\n')
}

export function presetsJson (): string {
  return `${JSON.stringify({ ...presetCounts(), presets: PRESETS }, null, 2)}\n`
}
