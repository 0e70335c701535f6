// Turns a parsed chain file into the Chain the rules read: each hop's effective values, merged
// preset → longhaul config → `set:`, each with its provenance; `set:` keys that the component
// ignores, caps or fixes become pitfalls instead of silently changing the model.
import { dirname, resolve as resolvePath } from 'node:path'
import { loadConfigFile } from '../config/load.ts'
import { ConfigError } from '../config/diagnostics.ts'
import { parseChainFile, type ChainDiagnostics, type ChainSpec } from './chain.ts'
import { findPreset, PRESET_NAMES } from './presets.ts'
import { longhaulValues } from './longhaul.ts'
import { isProperty, PROPERTY_NAMES, type Property } from './properties.ts'
import { fmt, sec } from './format.ts'
import type { Chain, Deploy, Hop, PitfallHit, Value } from './model.ts'
import type { Preset } from './presets/types.ts'

type HopSpec = ChainSpec['hops'][number]

const K8S_GRACE = 'Kubernetes default pod.spec.terminationGracePeriodSeconds (https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/)'

function presetValues (preset: Preset): Partial<Record<Property, Value>> {
  const values: Partial<Record<Property, Value>> = {}
  for (const [property, p] of Object.entries(preset.values) as Array<[Property, NonNullable<Preset['values'][Property]>]>) {
    values[property] = { ms: p.ms, origin: 'preset', setting: p.setting, source: p.source, confirmed: p.confirmed, symptom: p.symptom ?? null, note: p.note ?? null, how: p.how ?? null, fixed: p.fixed === true }
  }
  return values
}

/** A longhaul hop's values from its config file; the properties that still follow another one. */
async function configValues (h: HopSpec, i: number, dir: string, d: ChainDiagnostics): Promise<{ values: Partial<Record<Property, Value>>, following: Set<Property> } | null> {
  const path = resolvePath(dir, h.config!)
  let config
  try {
    ({ config } = await loadConfigFile(path))
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    const unreadable = err.diagnostics.find((x) => x.message.startsWith('cannot read config'))
    if (unreadable !== undefined) d.error(['hops', i, 'config'], `${unreadable.message.replace('cannot read config', `cannot read ${h.config}`)}`)
    else d.list.push(...err.diagnostics.filter((x) => x.severity === 'error'))
    return null
  }
  const names = config.routes.map((r) => r.name)
  let route = config.routes[0]!
  if (h.route === undefined) {
    if (config.routes.length > 1) {
      d.error(['hops', i, 'route'], `missing required key 'route': ${h.config} has routes ${names.join(', ')}`)
      return null
    }
  } else {
    const found = config.routes.find((r) => r.name === h.route)
    if (found === undefined) {
      d.unknown(['hops', i, 'route'], 'route', h.route, names, { after: ` in ${h.config} (routes: ${names.join(', ')})` })
      return null
    }
    route = found
  }
  const values: Partial<Record<Property, Value>> = {}
  for (const [property, c] of Object.entries(longhaulValues(config, route)) as Array<[Property, NonNullable<ReturnType<typeof longhaulValues>[Property]>]>) {
    values[property] = { ms: c.ms, origin: 'config', setting: c.setting, source: path, confirmed: true, symptom: c.symptom ?? null, note: c.note ?? null, how: null, fixed: false }
  }
  const following = new Set<Property>(route.timeouts.firstByteFollowsRequest ? ['firstByteTimeout'] : [])
  return { values, following }
}

/** Applies a hop's `set:`: each key a property (unless the component fixes or caps it) or a known pitfall; returns what it set. */
function applySet (h: HopSpec, i: number, preset: Preset | null, values: Partial<Record<Property, Value>>, d: ChainDiagnostics, pitfalls: PitfallHit[]): Set<Property> {
  const written = new Set<Property>()
  for (const [key, ms] of Object.entries(h.set ?? {})) {
    const where = d.where(['hops', i, 'set', key])
    if (isProperty(key)) {
      written.add(key)
      const known = preset?.values[key]
      const base = { setting: known?.setting ?? key, symptom: known?.symptom ?? null, how: known?.how ?? null }
      const hit = (kind: PitfallHit['kind'], effective: number | null | undefined, what: string, works: string, raisable = false): void => {
        pitfalls.push({ hop: h.name, key, kind, meant: key, written: ms, effective, what, works, source: known!.source, confirmed: known!.confirmed, raisable })
      }
      if (known?.fixed === true) {
        hit('fixed', known.ms, `${preset!.name} ${known.setting} is fixed at ${fmt(known.ms)}: the provider does not let anyone change it`, `plan around ${fmt(known.ms)} on the other side of this hop`)
        continue
      }
      let effective = ms
      if (known?.cap !== undefined && (ms === null || ms > known.cap.ms)) {
        const { cap } = known
        if (!cap.raisable) effective = cap.ms
        hit('capped', effective, `${preset!.name} caps ${known.setting} at ${fmt(cap.ms)}${cap.raisable ? '' : `: ${fmt(ms)} becomes ${fmt(cap.ms)}`}`, cap.raisable ? `${fmt(ms)} holds only ${cap.how}` : `stay within ${cap.how}, or move the long work off this hop`, cap.raisable)
      } else if (known?.onlyIf !== undefined) {
        hit('conditional', ms, `${preset!.name} ${known.setting} can be changed only if ${known.onlyIf}`, `check that it holds; otherwise the value stays ${fmt(known.ms)}`)
      }
      values[key] = { ms: effective, origin: 'set', setting: `${base.setting} = ${fmt(ms)}`, source: where, confirmed: true, symptom: base.symptom, note: null, how: base.how, fixed: false }
    } else if (preset?.pitfalls?.[key] !== undefined) {
      const p = preset.pitfalls[key]
      pitfalls.push({ hop: h.name, key, kind: 'ignored', meant: p.meant, written: ms, effective: undefined, what: p.what, works: p.works, source: p.source, confirmed: p.confirmed, raisable: false })
    } else {
      d.unknown(['hops', i, 'set', key], 'property', key, [...PROPERTY_NAMES, ...Object.keys(preset?.pitfalls ?? {})], { key: true })
    }
  }

  return written
}

async function resolveHop (h: HopSpec, i: number, dir: string, d: ChainDiagnostics, pitfalls: PitfallHit[]): Promise<Hop> {
  let preset: Preset | null = null
  if (h.preset !== undefined) {
    preset = findPreset(h.preset) ?? null
    if (preset === null) d.unknown(['hops', i, 'preset'], 'preset', h.preset, PRESET_NAMES, { after: '; `longhaul doctor --presets` lists them' })
  }
  let values = preset === null ? {} : presetValues(preset)
  // Preset values follow their leader unless something sets them; a config may say they are its own.
  let following = new Set<Property>(Object.keys(preset?.follows ?? {}) as Property[])

  if (h.config !== undefined || h.route !== undefined) {
    if (preset?.name !== 'longhaul') {
      d.error(['hops', i, h.config !== undefined ? 'config' : 'route'], 'config: and route: read a longhaul config file: they need preset: longhaul', { key: true })
    } else if (h.config === undefined) {
      d.error(['hops', i, 'config'], 'missing required key \'config\': route: names a route of a longhaul config file')
    } else {
      const fromConfig = await configValues(h, i, dir, d)
      if (fromConfig !== null) {
        values = { ...values, ...fromConfig.values }
        following = fromConfig.following
      }
    }
  }

  const written = applySet(h, i, preset, values, d, pitfalls)
  for (const follower of following) {
    const leader = preset?.follows?.[follower]
    const lead = leader === undefined ? undefined : values[leader]
    if (written.has(follower) || leader === undefined || !written.has(leader) || lead === undefined) continue
    values[follower] = { ...lead, setting: `${values[follower]?.setting ?? follower} (follows ${leader})`, symptom: values[follower]?.symptom ?? lead.symptom }
  }
  return { name: h.name, index: i, preset, config: h.config ?? null, values }
}

function resolveDeploy (spec: ChainSpec, hops: readonly Hop[]): Deploy | null {
  if (spec.deploy === undefined) return null
  const named = spec.deploy.hop ?? hops[hops.length - 1]!.name
  const podHops = (typeof named === 'string' ? [named] : named).map((n) => hops.find((h) => h.name === n)!)
  if (spec.deploy.terminationGracePeriod !== undefined) return { hops: podHops, graceMs: spec.deploy.terminationGracePeriod, graceFrom: 'deploy.terminationGracePeriod' }
  for (const hop of podHops) {
    const grace = hop.preset?.podGrace
    const ms = grace === undefined ? undefined : hop.values[grace.follows]?.ms
    if (grace !== undefined && typeof ms === 'number') return { hops: podHops, graceMs: ms, graceFrom: `${hop.preset!.name}: ${grace.setting} (${grace.source})` }
  }
  return { hops: podHops, graceMs: sec(30), graceFrom: K8S_GRACE }
}

/** Loads a chain file and everything it names; throws ConfigError with every problem found. */
export async function loadChain (file: string): Promise<Chain> {
  const { spec, diagnostics } = await parseChainFile(file)
  const dir = dirname(file)
  const hops: Hop[] = []
  const pitfalls: PitfallHit[] = []
  for (const [i, h] of spec.hops.entries()) hops.push(await resolveHop(h, i, dir, diagnostics, pitfalls))
  diagnostics.throwIfAny()
  const w = spec.workload
  return {
    file,
    workload: {
      name: w.name ?? null,
      durationMs: w.duration,
      streaming: w.streaming,
      maxSilenceMs: w.streaming ? w.maxSilence! : w.duration,
      idleBetweenRequestsMs: w.idleBetweenRequests ?? null
    },
    hops,
    deploy: resolveDeploy(spec, hops),
    pitfalls
  }
}
