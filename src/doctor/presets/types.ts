// What a preset says about a component: its default limits in the doctor's vocabulary, each with
// the component's own name for the setting and where the value was read (timeout-defaults.md).
import type { Property } from '../properties.ts'

export type PresetGroup = 'clients' | 'servers' | 'proxies' | 'clouds'

export interface PresetValue {
  /** Milliseconds; null = unlimited. */
  readonly ms: number | null
  /** The component's own name for the setting. */
  readonly setting: string
  /** Where the value was read: URL(s) of docs or source at a pinned commit. */
  readonly source: string
  /** false: a single source, not re-read; the doctor says so next to the value. */
  readonly confirmed: boolean
  /** What the user sees when this limit fires (the strings users paste). */
  readonly symptom?: string
  readonly note?: string
  /** Where to change it, when that is not obvious from the setting's name. */
  readonly how?: string
  /** The provider does not let anyone change it: `set:` on it is ignored (and reported). */
  readonly fixed?: boolean
  /** The most the component accepts; `raisable` when a quota or config can lift it. */
  readonly cap?: { readonly ms: number, readonly raisable: boolean, readonly how: string }
  /** A condition for `set:` to take effect at all (a plan, an edition). */
  readonly onlyIf?: string
}

/** A setting users write that the component silently ignores: a `set:` key of its own. */
export interface Pitfall {
  /** The property the user meant to change with it. */
  readonly meant: Property
  readonly what: string
  readonly works: string
  readonly source: string
  readonly confirmed: boolean
}

/** Settings that a preset shows in `--presets` but that are not one of the doctor's properties. */
export interface OtherSetting {
  readonly setting: string
  readonly ms: number | null
  readonly meaning: string
  readonly source: string
  readonly confirmed: boolean
}

/** A behaviour the component switches between (gunicorn's worker class, sync or async endpoints, an SDK's language). */
export interface PresetMode {
  readonly description: string
  /** Values that differ in this mode; null: the setting does not apply in this mode. */
  readonly values?: Readonly<Partial<Record<Property, PresetValue | null>>>
  readonly notes?: readonly string[]
}

/** A client's own retries: how many times it sends the request again, and after what. */
export interface Retries {
  readonly count: number
  /** HTTP statuses, plus `timeout` (its own limit fired) and `reset` (the connection broke). */
  readonly on: readonly RetryTrigger[]
  readonly source?: string
}

export type RetryTrigger = number | 'timeout' | 'reset'

/** What a client shows when the path fails it, in its own words. */
export interface ClientView {
  /** A response cut after its headers (stream truncated or reset). */
  readonly streamCut?: string
  /** Connection closed with no response at all. */
  readonly emptyReply?: string
  /** A reused connection reset by the other side. */
  readonly reset?: string
}

export interface Preset {
  readonly name: string
  readonly component: string
  readonly group: PresetGroup
  readonly values: Readonly<Partial<Record<Property, PresetValue>>>
  /** Properties that are the same setting as another one unless set themselves (ALB's single idle timer). */
  readonly follows?: Readonly<Partial<Record<Property, Property>>>
  /** Its stream idle timer starts after the response headers (a separate first-byte limit covers the wait before). */
  readonly streamIdleAfterHeaders?: boolean
  /** A layer-4 hop: it forwards connections and keeps no pool of its own. */
  readonly passThrough?: boolean
  /** Modes that change its values; `defaultMode` unless the hop names one (`streamingMode` for a streaming workload). */
  readonly modes?: Readonly<Record<string, PresetMode>>
  readonly defaultMode?: string
  readonly streamingMode?: string
  /** A client that sends a request again, by itself, when a reused idle connection fails before any response byte (the source). */
  readonly resendsOnStaleConnection?: string
  /** A client's own retries by default. */
  readonly retries?: Retries
  /** What a stream cut behind this hop looks like in front of it, when it hides the cut (a clean end). */
  readonly relaysCutAs?: string
  /** Kubernetes pod grace period this platform sets from one of its limits (Knative: timeoutSeconds). */
  readonly podGrace?: { readonly follows: Property, readonly setting: string, readonly source: string }
  readonly pitfalls?: Readonly<Record<string, Pitfall>>
  readonly sees?: ClientView
  readonly other?: readonly OtherSetting[]
  readonly notes?: readonly string[]
}

/** A preset value, briefly: `v(30_000, 'timeoutSec', SOURCE, { symptom })`. */
export function v (ms: number | null, setting: string, source: string, extra: Partial<Omit<PresetValue, 'ms' | 'setting' | 'source'>> = {}): PresetValue {
  return { ms, setting, source, confirmed: true, ...extra }
}

type PresetBody = Omit<Preset, 'name' | 'component' | 'group'>

function presetOf (group: PresetGroup): (name: string, component: string, body: PresetBody) => Preset {
  return (name, component, body) => ({ name, component, group, ...body })
}

// One constructor per group, so a preset opens with one line: `proxy('nginx', 'NGINX as a reverse proxy', { values })`.
export const client = presetOf('clients')
export const server = presetOf('servers')
export const proxy = presetOf('proxies')
export const cloud = presetOf('clouds')
