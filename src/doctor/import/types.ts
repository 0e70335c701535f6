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
