// What the primary and its worker processes say to each other over the cluster IPC channel
// (serialization 'advanced', workers.ts: a RuntimeConfig holds Sets).
// Every message carries a `longhaul` field, so prom-client's own cluster messages pass by.
import type { RuntimeConfig } from '../config/runtime.ts'
import type { ReloadResult } from '../gateway/server.ts'
import type { LiveSnapshot } from '../admin/live-page.ts'
import type { HeadroomExport } from '../observe/headroom.ts'

export type ToWorker =
  /** config: resolved by the primary's config loader; ports: what the first worker bound, for the others (null for the first). */
  | { longhaul: 'start', config: RuntimeConfig, ports: number[] | null }
  | { longhaul: 'reload', id: number, config: RuntimeConfig }
  | { longhaul: 'status', id: number }
  | { longhaul: 'live', id: number }
  | { longhaul: 'drain', signal: string }

export type FromWorker =
  | { longhaul: 'serving', addresses: string[] }
  | { longhaul: 'inflight', inflight: number }
  | { longhaul: 'draining' }
  | { longhaul: 'reloaded', id: number, result: ReloadResult }
  | { longhaul: 'status', id: number, status: Record<string, unknown> }
  | { longhaul: 'live', id: number, live: LiveSnapshot, headroom: HeadroomExport }

export function isFromWorker (message: unknown): message is FromWorker {
  return typeof message === 'object' && message !== null && typeof (message as { longhaul?: unknown }).longhaul === 'string'
}

export function isToWorker (message: unknown): message is ToWorker {
  return isFromWorker(message)
}
