// Turns a parsed chain file into the Chain the rules read: each hop's effective values, merged
// preset → longhaul config → `set:`, each with its provenance; `set:` keys that the component
// ignores, caps or fixes become pitfalls instead of silently changing the model.
import { dirname, resolve as resolvePath } from 'node:path'
import { loadConfigFile } from '../config/load.ts'
import { ConfigError } from '../config/diagnostics.ts'
import { parseChainFile, uploadMs, type ChainDiagnostics, type ChainSpec } from './chain.ts'
import { findPreset, modeValues, PRESET_NAMES, settingNames } from './presets.ts'
import { longhaulValues } from './longhaul.ts'
import { isProperty, PROPERTY_NAMES, type Property } from './properties.ts'
import { fmt, sec } from './format.ts'
import type { Chain, Deploy, Hop, PitfallHit, Value, Workload } from './model.ts'
import type { Preset } from './presets/types.ts'

type HopSpec = ChainSpec['hops'][number]

const K8S_GRACE = 'Kubernetes default pod.spec.terminationGracePeriodSeconds (https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/)'

function presetValues (preset: Preset, mode: string | null): Partial<Record<Property, Value>> {
  const values: Partial<Record<Property, Value>> = {}
  for (const [property, p] of Object.entries(modeValues(preset, mode)) as Array<[Property, NonNullable<Preset['values'][Property]>]>) {
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
function applySet (h: HopSpec, i: number, preset: Preset | null, mode: string | null, values: Partial<Record<Property, Value>>, d: ChainDiagnostics, pitfalls: PitfallHit[]): Set<Property> {
  const written = new Set<Property>()
  const own = preset === null ? new Map<string, Property>() : settingNames(preset, mode)
  for (const [name, ms] of Object.entries(h.set ?? {})) {
    const where = d.where(['hops', i, 'set', name])
    // A property name, or the component's own name for the setting (`proxy_read_timeout`).
    const key = isProperty(name) || preset?.pitfalls?.[name] !== undefined ? name : own.get(name) ?? name
    if (isProperty(key)) {
      written.add(key)
      const known = preset === null ? undefined : modeValues(preset, mode)[key]
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
      const setting = name === key ? base.setting : name
      values[key] = { ms: effective, origin: 'set', setting: `${setting} = ${fmt(ms)}`, source: where, confirmed: true, symptom: base.symptom, note: null, how: base.how, fixed: false }
    } else if (preset?.pitfalls?.[key] !== undefined) {
      const p = preset.pitfalls[key]
      pitfalls.push({ hop: h.name, key, kind: 'ignored', meant: p.meant, written: ms, effective: undefined, what: p.what, works: p.works, source: p.source, confirmed: p.confirmed, raisable: false })
    } else if (preset !== null && mode !== null && settingNames(preset, null).has(key)) {
      // The setting exists, but not in this mode (gunicorn's --keep-alive with sync workers).
      const meant = settingNames(preset, null).get(key)!
      const modeInfo = preset.modes![mode]!
      pitfalls.push({ hop: h.name, key, kind: 'ignored', meant, written: ms, effective: undefined, what: `in mode ${mode} (${modeInfo.description}), ${key} does not apply${modeInfo.notes === undefined ? '' : `: ${modeInfo.notes.join(' ')}`}`, works: `drop it, or run ${preset.name} in a mode where it applies (modes: ${Object.keys(preset.modes!).join(', ')})`, source: preset.values[meant]?.source ?? preset.name, confirmed: preset.values[meant]?.confirmed ?? true, raisable: false })
    } else {
      d.unknown(['hops', i, 'set', key], 'property', key, [...PROPERTY_NAMES, ...Object.keys(preset?.pitfalls ?? {}), ...own.keys()], { key: true, after: preset === null ? '' : ` (a property, or one of ${preset.name}'s settings: see --presets)` })
    }
  }

  return written
}

/** The mode a hop runs in: the one it names, else its preset's default for this workload. */
function pickMode (h: HopSpec, i: number, preset: Preset | null, streaming: boolean, d: ChainDiagnostics): string | null {
  const modes = Object.keys(preset?.modes ?? {})
  if (h.mode === undefined) return preset === null || modes.length === 0 ? null : (streaming ? preset.streamingMode : undefined) ?? preset.defaultMode ?? null
  if (preset === null) return null
  if (modes.length === 0) d.error(['hops', i, 'mode'], `preset ${preset.name} has no modes`, { key: true })
  else if (!modes.includes(h.mode)) d.unknown(['hops', i, 'mode'], 'mode', h.mode, modes, { after: ` of ${preset.name} (modes: ${modes.join(', ')})` })
  else return h.mode
  return null
}

async function resolveHop (h: HopSpec, i: number, spec: ChainSpec, dir: string, d: ChainDiagnostics, pitfalls: PitfallHit[]): Promise<Hop> {
  let preset: Preset | null = null
  if (h.preset !== undefined) {
    preset = findPreset(h.preset) ?? null
    if (preset === null) d.unknown(['hops', i, 'preset'], 'preset', h.preset, PRESET_NAMES, { after: '; `longhaul doctor --presets` lists them' })
  }
  const mode = pickMode(h, i, preset, spec.workload.streaming, d)
  let values = preset === null ? {} : presetValues(preset, mode)
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

  const written = applySet(h, i, preset, mode, values, d, pitfalls)
  for (const follower of following) {
    const leader = preset?.follows?.[follower]
    const lead = leader === undefined ? undefined : values[leader]
    if (written.has(follower) || leader === undefined || !written.has(leader) || lead === undefined) continue
    values[follower] = { ...lead, setting: `${values[follower]?.setting ?? follower} (follows ${leader})`, symptom: values[follower]?.symptom ?? lead.symptom }
  }
  return {
    name: h.name,
    index: i,
    preset,
    config: h.config ?? null,
    mode,
    passThrough: h.passThrough ?? preset?.passThrough === true,
    symptom: h.symptom ?? preset?.relaysCutAs ?? null,
    values
  }
}

function resolveWorkload (spec: ChainSpec): Workload {
  const w = spec.workload
  const client = spec.hops[0]?.preset === undefined ? undefined : findPreset(spec.hops[0].preset)
  const retries = w.retries !== undefined
    ? { ...w.retries, from: 'workload.retries' }
    : client?.retries === undefined ? null : { ...client.retries, from: `preset ${client.name}${client.retries.source === undefined ? '' : `: ${client.retries.source}`}` }
  return {
    name: w.name ?? null,
    durationMs: w.duration,
    streaming: w.streaming,
    maxSilenceMs: w.streaming ? w.maxSilence! : w.duration,
    idleBetweenRequestsMs: w.idleBetweenRequests ?? null,
    firstByteMs: w.firstByte ?? null,
    upload: w.upload === undefined ? null : { bytes: w.upload.size, bytesPerSecond: w.upload.rate, ms: uploadMs(w.upload) },
    retries
  }
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
  for (const [i, h] of spec.hops.entries()) hops.push(await resolveHop(h, i, spec, dir, diagnostics, pitfalls))
  diagnostics.throwIfAny()
  return {
    file,
    workload: resolveWorkload(spec),
    hops,
    deploy: resolveDeploy(spec, hops),
    pitfalls
  }
}
