// The resolved chain the rules read, and the findings they return.
import type { Preset, Retries } from './presets/types.ts'
import type { Property } from './properties.ts'

export interface Workload {
  readonly name: string | null
  readonly durationMs: number
  readonly streaming: boolean
  /** Longest gap between response bytes; for a non-streaming workload, the whole duration. */
  readonly maxSilenceMs: number
  readonly idleBetweenRequestsMs: number | null
  /** Time from the request to the first response byte; null when not given (a stream starts at once). */
  readonly firstByteMs: number | null
  /** The request body's transfer, at the start of the request. */
  readonly upload: { readonly bytes: number, readonly bytesPerSecond: number, readonly ms: number } | null
  /** The client's own retries: the workload's, else its preset's; null: none known. */
  readonly retries: (Retries & { readonly from: string }) | null
}

export type Origin = 'preset' | 'config' | 'set' | 'file'

/** One effective limit of a hop, and where it came from. */
export interface Value {
  readonly ms: number | null
  readonly origin: Origin
  /** The component's name for it, the config key, or what `set:` wrote. */
  readonly setting: string
  readonly source: string | null
  readonly confirmed: boolean
  readonly symptom: string | null
  readonly note: string | null
  /** Where to change it, for fixes. */
  readonly how: string | null
  /** Nobody can change it (a provider's fixed value). */
  readonly fixed: boolean
}

export interface Hop {
  readonly name: string
  readonly index: number
  readonly preset: Preset | null
  /** `config:` of a longhaul hop, as written (relative to the chain file). */
  readonly config: string | null
  /** FILE:LINE where a from: file describes this hop; null for a hop written in the chain file. */
  readonly from: string | null
  /** The preset's mode in effect, when it has modes. */
  readonly mode: string | null
  /** A layer-4 hop (its preset's, or the chain file's `passThrough: true`). */
  readonly passThrough: boolean
  /** What a stream cut behind it looks like in front of it (the chain file's `symptom:`, else its preset's). */
  readonly symptom: string | null
  readonly values: Readonly<Partial<Record<Property, Value>>>
}

/** A `set:` that does not do what it says: an ignored setting, a fixed value, a cap, a plan. */
export interface PitfallHit {
  readonly hop: string
  /** The set: key, or the setting as an imported file writes it. */
  readonly key: string
  /** FILE:LINE of an imported setting; absent for set:. */
  readonly where?: string
  readonly kind: 'ignored' | 'fixed' | 'capped' | 'conditional'
  /** The property the setting was meant to change. */
  readonly meant: Property
  readonly written: number | null
  readonly effective: number | null | undefined
  readonly what: string
  readonly works: string
  readonly source: string
  readonly confirmed: boolean
  readonly raisable: boolean
}

export interface Deploy {
  /** The hops whose processes share the pod (one, or a sidecar and its app). */
  readonly hops: readonly Hop[]
  readonly graceMs: number
  readonly graceFrom: string
}

export interface Chain {
  readonly file: string
  readonly workload: Workload
  readonly hops: readonly Hop[]
  readonly deploy: Deploy | null
  readonly pitfalls: readonly PitfallHit[]
}

export type Severity = 'error' | 'warning' | 'info'

export const SEVERITY_RANK: Readonly<Record<Severity, number>> = { error: 0, warning: 1, info: 2 }

export interface FindingValue {
  readonly ms: number | null
  readonly text: string
  readonly from: string
}

export interface Finding {
  readonly rule: string
  readonly severity: Severity
  readonly hops: readonly string[]
  /** One sentence: what is wrong. */
  readonly problem: string
  readonly values: Readonly<Record<string, FindingValue>>
  /** What the user will see, with the strings users paste. */
  readonly symptom: string
  readonly fix: string
  /** When the request is cut, counted from its start (for the timeline); absent when nothing is cut. */
  readonly cutAtMs?: number
  /** How many times the client sends the request again after this cut (its retries; 0: none). */
  readonly retries?: number
}
