// What an importer reads from a real file: hops in the doctor's vocabulary, each value with the
// FILE:LINE it came from, and the settings the component ignores (themselves findings).
import type { Property } from '../properties.ts'

export interface ImportedValue {
  readonly ms: number | null
  /** The setting as the file writes it: `proxy_read_timeout 300s`, `GCPBackendPolicy chat spec.default.timeoutSec: 30`. */
  readonly setting: string
  /** FILE:LINE. */
  readonly where: string
}

/** A setting written in the file that the component does not act on. */
export interface IgnoredSetting {
  readonly setting: string
  readonly where: string
  readonly meant: Property
  readonly written: number | null
  readonly what: string
  readonly works: string
  readonly source: string
  readonly confirmed: boolean
}

export interface ImportedHop {
  readonly name: string
  /** A preset name, or null when the file names a component the doctor has no preset for. */
  readonly preset: string | null
  readonly mode?: string
  readonly values: Readonly<Partial<Record<Property, ImportedValue>>>
  readonly ignored: readonly IgnoredSetting[]
  /** Where the hop itself was found (the resource, the server block). */
  readonly where: string
}

export interface ImportedDeploy {
  /** Names of the imported hops that share the pod. */
  readonly hops: readonly string[]
  readonly graceMs?: number
  readonly graceFrom?: string
}

/** Hops from the client side towards the app, and the pod of the last one when the files say. */
export interface Imported {
  readonly hops: readonly ImportedHop[]
  readonly deploy: ImportedDeploy | null
}

/** A problem with the files themselves: unreadable, unparseable, or an order that is not evident. */
export class ImportError extends Error {
  readonly where: string
  constructor (where: string, message: string) {
    super(message)
    this.where = where
  }
}

/** Seconds as Kubernetes, gunicorn and ingress-nginx write them: a whole number, 0 meaning none where the component says so. */
export function seconds (text: unknown, zeroIsNone = false): number | null | undefined {
  const n = typeof text === 'number' ? text : typeof text === 'string' && /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : NaN
  if (!Number.isFinite(n)) return undefined
  return n === 0 && zeroIsNone ? null : Math.round(n * 1000)
}

const GO_DURATION = /^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/
const GO_DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g
const GO_DURATION_UNITS: Readonly<Record<string, number>> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/**
 * A duration as Kubernetes resources write them, in Go's time.ParseDuration syntax: units may be
 * compounded (`1m30s`, `1h30m`; the Gateway API's GEP-2257 durations are a subset), and Istio's
 * `1.5s` has a fraction. Whole milliseconds; undefined when the text is no such duration (a sign
 * is refused: no timeout is negative). `0` alone is zero, as in Go.
 */
export function goDuration (text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined
  const trimmed = text.trim()
  if (trimmed === '0') return 0
  if (!GO_DURATION.test(trimmed)) return undefined
  let ms = 0
  for (const [, value, unit] of trimmed.matchAll(GO_DURATION_PART)) ms += Number(value) * GO_DURATION_UNITS[unit!]!
  return Math.round(ms)
}
