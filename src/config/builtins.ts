// Built-in values that the schema documents and the running gateway reads. They live apart from
// schema.ts so that a serving process, which gets its config resolved by the config loader
// process (loader-process.ts), never loads the schema and its validator.
import { parseDuration } from './units.ts'

/** `idleTimeout: auto` without a Keep-Alive hint from the server: pooled connections idle this long. */
export const AUTO_IDLE_MS = 4000

/**
 * The route timeouts, one row each: what each limit is, its built-in default (provenance
 * `default`) and the outcome that names it when it fires. The one list of route timeouts: the
 * schema, resolve.ts, /config, `check --explain`, the doctor and the Deadline read it, and a
 * test holds the README's tables to it. `default: 'request'` follows the route's request limit,
 * `default: 'streamIdle'` its streamIdle limit.
 * Route timeouts have provenance, so they carry no zod default: resolve.ts applies these.
 */
export const ROUTE_TIMEOUTS = {
  firstByte: { default: 'request', outcome: 'first_byte_timeout', meaning: 'Until response headers arrive, counted from the request\'s arrival.' },
  firstEvent: { default: 'streamIdle', outcome: 'first_event_timeout', meaning: 'Longest wait from the response headers to the first event that carries an answer (SSE comments, heartbeats and Anthropic\'s ping and preamble events do not count; on a body that is not an event stream, its first byte). While it runs, streamIdle does not; after that event, streamIdle governs.' },
  streamIdle: { default: '5m', outcome: 'stream_idle_timeout', meaning: 'Max silence between response body chunks; re-armed per chunk, paused while a slow client holds the response back.' },
  request: { default: '10m', outcome: 'request_timeout', meaning: 'The whole exchange, from arrival to the last response byte; `none` = unlimited (streamIdle still applies).' },
  maxClientTimeout: { default: 'request', outcome: 'client_deadline_exceeded', meaning: 'How far a client\'s x-longhaul-timeout-ms may extend `request` (the default: a client can shorten, not lengthen).' },
  tunnelIdle: { default: '5m', outcome: 'tunnel_idle_timeout', meaning: 'A WebSocket tunnel silent in both directions this long is closed; re-armed by every byte either way. `request` still bounds the tunnel\'s life (use none for long-lived ones).' }
} as const satisfies Record<string, { default: string, outcome: string, meaning: string }>

/** limits.queueTimeout, which also bounds a wait for a connection when `limits` is absent. */
export const DEFAULT_QUEUE_TIMEOUT = '30s'

export type RouteTimeoutName = keyof typeof ROUTE_TIMEOUTS
export const ROUTE_TIMEOUT_NAMES = Object.keys(ROUTE_TIMEOUTS) as RouteTimeoutName[]

/** A route timeout's built-in value in ms, or the limit it follows ('request', 'streamIdle'). */
export function builtinTimeout (name: RouteTimeoutName): number | 'request' | 'streamIdle' {
  const value: string = ROUTE_TIMEOUTS[name].default
  return value === 'request' || value === 'streamIdle' ? value : parseDuration(value) as number
}
