// Turns a parsed chain file into the Chain the rules read: each hop's effective values, merged
// preset → longhaul config → `set:`, each with its provenance; `set:` keys that the component
// ignores, caps or fixes become pitfalls instead of silently changing the model.
import { dirname, relative, resolve as resolvePath } from 'node:path'
import { loadConfigFile } from '../config/load.ts'
import { ConfigError, type Diagnostic } from '../config/diagnostics.ts'
import { checkDeployHops, parseChainFile, uploadMs, type ChainDiagnostics, type ChainSpec } from './chain.ts'
import { importFrom } from './import/index.ts'
import { ImportError, type ImportedDeploy, type ImportedHop } from './import/types.ts'
import { findPreset, modeValues, PRESET_NAMES, settingNames } from './presets.ts'
import { longhaulValues } from './longhaul.ts'
import { isProperty, PROPERTY_NAMES, type Property } from './properties.ts'
import { fmt, sec } from './format.ts'
import type { Chain, Deploy, Hop, PitfallHit, Value, Workload } from './model.ts'
import type { Preset, PresetValue } from './presets/types.ts'

type HopSpec = NonNullable<ChainSpec['hops']>[number]

/** A hop of the chain as written, or one of the hops a from: entry read; `at` is its entry in the chain file (null: a --from path). */
interface Entry {
  readonly h: HopSpec & { readonly name: string }
  readonly at: number | null
  readonly imported: ImportedHop | null
}

const K8S_GRACE = 'Kubernetes default pod.spec.terminationGracePeriodSeconds (https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/)'

function presetValues (preset: Preset, mode: string | null): Partial<Record<Property, Value>> {
  const values: Partial<Record<Property, Value>> = {}
  for (const [property, p] of Object.entries(modeValues(preset, mode)) as Array<[Property, NonNullable<Preset['values'][Property]>]>) {
    values[property] = { ms: p.ms, origin: 'preset', setting: p.setting, source: p.source, confirmed: p.confirmed, symptom: p.symptom ?? null, note: p.note ?? null, how: p.how ?? null, fixed: p.fixed === true }
  }
  return values
}

/** A longhaul hop's values from its config file; the properties that still follow another one. */
async function configValues (h: Entry['h'], i: number, dir: string, d: ChainDiagnostics): Promise<{ values: Partial<Record<Property, Value>>, following: Set<Property> } | null> {
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
function applySet (h: Entry['h'], i: number, preset: Preset | null, mode: string | null, values: Partial<Record<Property, Value>>, d: ChainDiagnostics, pitfalls: PitfallHit[]): Set<Property> {
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
      const effective = limited({ hop: h.name, key, meant: key }, preset, known, ms, pitfalls)
      if (effective === undefined) continue
      const setting = name === key ? base.setting : name
      values[key] = { ms: effective, origin: 'set', setting: `${setting} = ${fmt(ms)}`, source: where, confirmed: true, symptom: base.symptom, note: null, how: base.how, fixed: false }
    } else if (preset?.pitfalls?.[key] !== undefined) {
      const p = preset.pitfalls[key]
      pitfalls.push({ hop: h.name, key, kind: 'ignored', meant: p.meant, written: ms, effective: undefined, what: p.what, works: p.works, source: p.source, confirmed: p.confirmed, raisable: false })
    } else if (preset !== null && mode !== null && settingNames(preset, null).has(key)) {
      // The setting exists, but not in this mode (gunicorn's --keep-alive with sync workers).
      pitfalls.push(notInMode({ hop: h.name, key, meant: settingNames(preset, null).get(key)! }, preset, mode, ms))
    } else {
      d.unknown(['hops', i, 'set', key], 'property', key, [...PROPERTY_NAMES, ...Object.keys(preset?.pitfalls ?? {}), ...own.keys()], { key: true, after: preset === null ? '' : ` (a property, or one of ${preset.name}'s settings: see --presets)` })
    }
  }

  return written
}

/** The mode a hop runs in: the one it names, else its preset's default for this workload. */
function pickMode (h: Entry['h'], i: number, preset: Preset | null, streaming: boolean, d: ChainDiagnostics): string | null {
  const modes = Object.keys(preset?.modes ?? {})
  if (h.mode === undefined) return preset === null || modes.length === 0 ? null : (streaming ? preset.streamingMode : undefined) ?? preset.defaultMode ?? null
  if (preset === null) return null
  if (modes.length === 0) d.error(['hops', i, 'mode'], `preset ${preset.name} has no modes`, { key: true })
  else if (!modes.includes(h.mode)) d.unknown(['hops', i, 'mode'], 'mode', h.mode, modes, { after: ` of ${preset.name} (modes: ${modes.join(', ')})` })
  else return h.mode
  return null
}

type Who = Pick<PitfallHit, 'hop' | 'key' | 'where' | 'meant'>

/**
 * What a component makes of a value written for it: a fixed value stays (undefined: nothing
 * changes), a cap applies, a plan decides; each is a pitfall.
 */
function limited (who: Who, preset: Preset | null, known: PresetValue | undefined, ms: number | null, pitfalls: PitfallHit[]): number | null | undefined {
  const hit = (kind: PitfallHit['kind'], effective: number | null | undefined, what: string, works: string, raisable = false): void => {
    pitfalls.push({ ...who, kind, written: ms, effective, what, works, source: known!.source, confirmed: known!.confirmed, raisable })
  }
  if (known?.fixed === true) {
    hit('fixed', known.ms, `${preset!.name} ${known.setting} is fixed at ${fmt(known.ms)}: the provider does not let anyone change it`, `plan around ${fmt(known.ms)} on the other side of this hop`)
    return undefined
  }
  let effective = ms
  if (known?.cap !== undefined && (ms === null || ms > known.cap.ms)) {
    const { cap } = known
    if (!cap.raisable) effective = cap.ms
    hit('capped', effective, `${preset!.name} caps ${known.setting} at ${fmt(cap.ms)}${cap.raisable ? '' : `: ${fmt(ms)} becomes ${fmt(cap.ms)}`}`, cap.raisable ? `${fmt(ms)} holds only ${cap.how}` : `stay within ${cap.how}, or move the long work off this hop`, cap.raisable)
  } else if (known?.onlyIf !== undefined) {
    hit('conditional', ms, `${preset!.name} ${known.setting} can be changed only if ${known.onlyIf}`, `check that it holds; otherwise the value stays ${fmt(known.ms)}`)
  }
  return effective
}

/** A setting written for a mode where it does not apply (gunicorn's --keep-alive with sync workers). */
function notInMode (who: Who, preset: Preset, mode: string, ms: number | null): PitfallHit {
  const m = preset.modes![mode]!
  const base = preset.values[who.meant]
  return { ...who, kind: 'ignored', written: ms, effective: undefined, what: `in mode ${mode} (${m.description}), it does not apply${m.notes === undefined ? '' : `: ${m.notes.join(' ')}`}`, works: `drop it, or run ${preset.name} in a mode where it applies (modes: ${Object.keys(preset.modes!).join(', ')})`, source: base?.source ?? preset.name, confirmed: base?.confirmed ?? true, raisable: false }
}

/** An imported hop's values over its preset's, each with the FILE:LINE it was read from; what the component ignores becomes a pitfall. */
function applyImported (hop: ImportedHop, name: string, preset: Preset | null, mode: string | null, values: Partial<Record<Property, Value>>, pitfalls: PitfallHit[]): Set<Property> {
  const written = new Set<Property>()
  const inMode = preset === null ? {} : modeValues(preset, mode)
  for (const [property, v] of Object.entries(hop.values) as Array<[Property, NonNullable<ImportedHop['values'][Property]>]>) {
    const known = inMode[property]
    const who = { hop: name, key: v.setting, where: v.where, meant: property }
    if (preset !== null && mode !== null && known === undefined && preset.values[property] !== undefined) {
      pitfalls.push(notInMode(who, preset, mode, v.ms))
      continue
    }
    // A file can say what the component does not allow (Knative above its max timeout): the same checks as set:.
    const effective = limited(who, preset, known, v.ms, pitfalls)
    if (effective === undefined) continue
    written.add(property)
    values[property] = { ms: effective, origin: 'file', setting: v.setting, source: v.where, confirmed: true, symptom: known?.symptom ?? null, note: null, how: known?.how ?? null, fixed: false }
  }
  for (const x of hop.ignored) {
    pitfalls.push({ hop: name, key: x.setting, where: x.where, kind: 'ignored', meant: x.meant, written: x.written, effective: undefined, what: x.what, works: x.works, source: x.source, confirmed: x.confirmed, raisable: false })
  }
  return written
}

async function resolveHop (entry: Entry, index: number, spec: ChainSpec, dir: string, d: ChainDiagnostics, pitfalls: PitfallHit[]): Promise<Hop> {
  const { h, imported } = entry
  const i = entry.at ?? index
  let preset: Preset | null = null
  const presetName = h.preset ?? imported?.preset ?? undefined
  if (presetName !== undefined) {
    preset = findPreset(presetName) ?? null
    if (preset === null) d.unknown(['hops', i, 'preset'], 'preset', presetName, PRESET_NAMES, { after: '; `longhaul doctor --presets` lists them' })
  }
  const mode = pickMode(h.mode === undefined && imported?.mode !== undefined ? { ...h, mode: imported.mode } : h, i, preset, spec.workload.streaming, d)
  let values = preset === null ? {} : presetValues(preset, mode)
  const fromFiles = imported === null ? new Set<Property>() : applyImported(imported, h.name, preset, mode, values, pitfalls)
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

  const written = new Set([...fromFiles, ...applySet(h, i, preset, mode, values, d, pitfalls)])
  for (const follower of following) {
    const leader = preset?.follows?.[follower]
    const lead = leader === undefined ? undefined : values[leader]
    if (written.has(follower) || leader === undefined || !written.has(leader) || lead === undefined) continue
    values[follower] = { ...lead, setting: `${values[follower]?.setting ?? follower} (follows ${leader})`, symptom: values[follower]?.symptom ?? lead.symptom }
  }
  return {
    name: h.name,
    index,
    preset,
    config: h.config ?? null,
    from: imported?.where ?? null,
    mode,
    passThrough: h.passThrough ?? preset?.passThrough === true,
    symptom: h.symptom ?? preset?.relaysCutAs ?? null,
    values
  }
}

function resolveWorkload (spec: ChainSpec): Workload {
  const w = spec.workload
  const first = spec.hops?.[0]?.preset
  const client = first === undefined ? undefined : findPreset(first)
  const retries = w.retries !== undefined
    ? { ...w.retries, from: 'workload.retries' }
    : client?.retries === undefined ? null : { ...client.retries, from: `preset ${client.name}` }
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

function resolveDeploy (spec: ChainSpec, hops: readonly Hop[], imported: ImportedDeploy | null): Deploy | null {
  if (spec.deploy === undefined && imported === null) return null
  const named = spec.deploy?.hop ?? imported?.hops ?? hops[hops.length - 1]!.name
  const podHops = (typeof named === 'string' ? [named] : named).map((n) => hops.find((h) => h.name === n)!)
  if (spec.deploy?.terminationGracePeriod !== undefined) return { hops: podHops, graceMs: spec.deploy.terminationGracePeriod, graceFrom: 'deploy.terminationGracePeriod' }
  if (spec.deploy === undefined && imported?.graceMs !== undefined) return { hops: podHops, graceMs: imported.graceMs, graceFrom: imported.graceFrom! }
  for (const hop of podHops) {
    const grace = hop.preset?.podGrace
    const ms = grace === undefined ? undefined : hop.values[grace.follows]?.ms
    const followed = grace === undefined ? undefined : hop.values[grace.follows]
    const read = followed?.origin === 'file' ? `${followed.source}: ${followed.setting}; ` : ''
    if (grace !== undefined && typeof ms === 'number') return { hops: podHops, graceMs: ms, graceFrom: `${read}${hop.preset!.name}: ${grace.setting} (${grace.source})` }
  }
  return { hops: podHops, graceMs: sec(30), graceFrom: K8S_GRACE }
}

/** An import problem as a diagnostic: at the from: key of the chain file, or (a --from path) at the file itself. */
function importDiagnostic (err: ImportError, at: number | null, d: ChainDiagnostics): void {
  if (at !== null) { d.error(['hops', at, 'from'], `cannot import: ${err.where}: ${err.message}`, { key: true }); return }
  const m = /^(.*?):(\d+)$/.exec(err.where)
  const diagnostic: Diagnostic = { severity: 'error', file: m?.[1] ?? err.where, line: Number(m?.[2] ?? 1), col: 1, path: '', message: `cannot import: ${err.message}` }
  d.list.push(diagnostic)
}

/** The chain's hops with every from: entry (and --from path, after them) replaced by the hops its files describe. */
async function expand (spec: ChainSpec, dir: string, from: readonly string[], d: ChainDiagnostics): Promise<{ entries: Entry[], deploy: ImportedDeploy | null }> {
  const entries: Entry[] = []
  let deploy: ImportedDeploy | null = null
  const sources: Array<{ h: HopSpec, at: number | null, paths: string[] }> = (spec.hops ?? (from.length > 0 ? [{ name: 'client' }] : [])).map((h, at) => ({ h, at: spec.hops === undefined ? null : at, paths: h.from === undefined ? [] : (typeof h.from === 'string' ? [h.from] : h.from).map((p) => resolvePath(dir, p)) }))
  if (from.length > 0) sources.push({ h: {}, at: null, paths: [...from] })
  for (const { h, at, paths } of sources) {
    if (paths.length === 0) { entries.push({ h: h as Entry['h'], at, imported: null }); continue }
    try {
      const result = await importFrom(paths.map((p) => relativePath(p)), h.path === undefined ? {} : { path: h.path })
      if (h.name !== undefined && result.hops.length > 1) {
        d.error(['hops', at!, 'name'], `from: ${String(h.from)} describes ${result.hops.length} hops (${result.hops.map((x) => x.name).join(', ')}): leave name: out to take them all`, { key: true })
        continue
      }
      for (const imported of result.hops) entries.push({ h: { ...h, name: h.name ?? imported.name }, at, imported })
      deploy = result.deploy ?? deploy
    } catch (err) {
      if (!(err instanceof ImportError)) throw err
      importDiagnostic(err, at, d)
    }
  }
  return { entries, deploy }
}

/** A path as the user can find it: relative to the working directory when it is under it. */
function relativePath (path: string): string {
  const rel = relative(process.cwd(), path)
  return rel.startsWith('..') ? path : rel
}

/**
 * Loads a chain file and everything it names; throws ConfigError with every problem found.
 * `from`: more files (paths as given on the command line) whose hops come after the chain file's.
 */
export async function loadChain (file: string, options: { from?: readonly string[] } = {}): Promise<Chain> {
  const { spec, diagnostics } = await parseChainFile(file)
  const dir = dirname(file)
  const { entries, deploy } = await expand(spec, dir, (options.from ?? []).map((p) => resolvePath(p)), diagnostics)
  // A from: that could not be read is reported already; the count would only repeat it.
  if (entries.length < 2 && diagnostics.list.length === 0) diagnostics.error(spec.hops === undefined ? ['workload'] : ['hops'], 'a chain needs at least two hops: a client first, the app last' + (spec.hops === undefined ? ' (hops:, or files with --from)' : ''), { key: spec.hops === undefined })
  const seen = new Map<string, Entry>()
  for (const e of entries) {
    const before = seen.get(e.h.name)
    if (before !== undefined && (e.imported !== null || before.imported !== null)) diagnostics.error(['hops', e.at ?? before.at ?? 0], `hop name '${e.h.name}' comes twice in the chain (a from: file names a hop the same as another): give the hop a name:`)
    seen.set(e.h.name, e)
  }
  checkDeployHops(spec, entries.map((e) => e.h.name), diagnostics)
  const hops: Hop[] = []
  const pitfalls: PitfallHit[] = []
  for (const [index, entry] of entries.entries()) hops.push(await resolveHop(entry, index, spec, dir, diagnostics, pitfalls))
  diagnostics.throwIfAny()
  return {
    file,
    workload: resolveWorkload(spec),
    hops,
    deploy: resolveDeploy(spec, hops, deploy),
    pitfalls
  }
}
