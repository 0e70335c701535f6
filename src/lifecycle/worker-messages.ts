// What the primary and its worker processes say to each other over the cluster IPC channel.
// Every message carries a `longhaul` field, so prom-client's own cluster messages pass by.
import type { ReloadResult } from '../gateway/server.ts'
import type { LiveSnapshot } from '../admin/live-page.ts'
import type { HeadroomExport } from '../observe/headroom.ts'

export type ToWorker =
  /** ports: what the first worker bound, for the others (null for the first). */
  | { longhaul: 'start', text: string, path: string, ports: number[] | null }
  | { longhaul: 'reload', id: number, text: string, path: string }
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
