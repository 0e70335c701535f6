// Fault knobs of the demo upstream: names, descriptions and per-request parsing.
// A knob is read from the request header `x-demo-<name>` or, failing that, from the
// query parameter `<name>` (the header wins).
import type { IncomingHttpHeaders } from 'node:http'

export interface DemoKnob {
  readonly name: string
  readonly description: string
}

export const DEMO_KNOBS = [
  { name: 'delay-ms', description: 'wait this many ms before answering (before the response headers and every other fault)' },
  { name: 'chunks', description: 'tokens (chat) or events (/sse) to send; default 40' },
  { name: 'interval-ms', description: 'ms between two tokens/events (chat, /sse; default 50) or 64 KiB chunks (/bytes; default 0)' },
  { name: 'stall-after', description: 'after N body chunks stop writing and keep the connection open; 0 = headers, then nothing' },
  { name: 'reset-after', description: 'after N body chunks reset the connection (TCP RST); 0 = before any response byte' },
  { name: 'empty-reply', description: '1 = close the connection without writing a single byte' },
  { name: 'malformed', description: '1 = answer with bytes that are not a valid HTTP response' },
  { name: 'status', description: 'respond with this status code (200-599) instead of 200' },
  { name: 'retry-after', description: 'add Retry-After: <value> (seconds or an HTTP date)' },
  { name: 'keep-alive-hint', description: 'add Keep-Alive: timeout=<N> (seconds)' },
  { name: 'close-idle-after-ms', description: 'close the connection if it stays idle this many ms after the response' },
  { name: 'pause-after', description: '/sse: after N events, pause for pause-ms, then go on (0 = right after the headers)' },
  { name: 'pause-ms', description: '/sse: how long the pause-after pause lasts; default 1000' },
  { name: 'pause-mid-event', description: '/sse: 1 = the pause falls inside event N+1: its first line is written before the pause, the rest after' },
  { name: 'first-event-after-ms', description: 'chat (stream) and /sse: after the response headers, wait this many ms before the first event (a model thinking)' },
  { name: 'comment-every-ms', description: 'chat (stream) and /sse: while waiting for the first event, write the SSE comment `: thinking` every N ms (comments are no events)' },
  { name: 'error-event', description: 'chat (stream) and /sse: instead of the first event, send an in-band error record of this type (e.g. overloaded_error) and end the stream' },
  { name: 'reset-after-headers', description: 'chat (stream) and /sse: 1 = reset the connection after the response headers (and first-event-after-ms), before the first event' },
] as const satisfies readonly DemoKnob[]

export type DemoKnobName = (typeof DEMO_KNOBS)[number]['name']

/** Knob values of one request; undefined = not given. */
export interface DemoKnobs {
  delayMs: number
  chunks: number | undefined
  intervalMs: number | undefined
  stallAfter: number | undefined
  resetAfter: number | undefined
  emptyReply: boolean
  malformed: boolean
  status: number | undefined
  retryAfter: string | undefined
  keepAliveHint: number | undefined
  closeIdleAfterMs: number | undefined
  pauseAfter: number | undefined
  pauseMs: number
  pauseMidEvent: boolean
  firstEventAfterMs: number
  commentEveryMs: number | undefined
  errorEvent: string | undefined
  resetAfterHeaders: boolean
}

export type ParseKnobsResult = { ok: true, knobs: DemoKnobs } | { ok: false, error: string }

/** Largest delay setTimeout honours (a larger one silently becomes 1 ms). */
export const MAX_TIMER_MS = 2_147_483_647

class KnobError extends Error {}

/** Knob values an upstream instance applies when a request names none (one faulty endpoint of a pair). */
export type KnobDefaults = Partial<Record<DemoKnobName, string>>

function rawValue (name: DemoKnobName, headers: IncomingHttpHeaders, query: URLSearchParams, defaults: KnobDefaults): string | undefined {
  const h = headers[`x-demo-${name}`]
  if (h !== undefined) return Array.isArray(h) ? h.join(', ') : h
  return query.get(name) ?? defaults[name]
}

export function parseKnobs (headers: IncomingHttpHeaders, query: URLSearchParams, defaults: KnobDefaults = {}): ParseKnobsResult {
  const invalid = (name: DemoKnobName, value: string): never => {
    throw new KnobError(`invalid x-demo-${name}: ${value}`)
  }
  const int = (name: DemoKnobName, min: number, max: number): number | undefined => {
    const v = rawValue(name, headers, query, defaults)
    if (v === undefined) return undefined
    if (!/^\d+$/.test(v)) return invalid(name, v)
    const n = Number(v)
    if (!Number.isSafeInteger(n) || n < min || n > max) return invalid(name, v)
    return n
  }
  const flag = (name: DemoKnobName): boolean => int(name, 0, 1) === 1
  const retryAfter = (): string | undefined => {
    const v = rawValue('retry-after', headers, query, defaults)
    if (v === undefined) return undefined
    if (/^\d+$/.test(v)) return v
    // An HTTP date (RFC 9110 IMF-fixdate and friends).
    if (/^[A-Za-z]{3}, /.test(v) && !Number.isNaN(Date.parse(v))) return v
    return invalid('retry-after', v)
  }
  const errorType = (): string | undefined => {
    const v = rawValue('error-event', headers, query, defaults)
    if (v === undefined) return undefined
    return /^[a-z][a-z_]{0,63}$/.test(v) ? v : invalid('error-event', v)
  }
  const MAX = Number.MAX_SAFE_INTEGER
  try {
    return {
      ok: true,
      knobs: {
        delayMs: int('delay-ms', 0, MAX_TIMER_MS) ?? 0,
        chunks: int('chunks', 0, MAX),
        intervalMs: int('interval-ms', 0, MAX_TIMER_MS),
        stallAfter: int('stall-after', 0, MAX),
        resetAfter: int('reset-after', 0, MAX),
        emptyReply: flag('empty-reply'),
        malformed: flag('malformed'),
        status: int('status', 200, 599),
        retryAfter: retryAfter(),
        keepAliveHint: int('keep-alive-hint', 0, MAX),
        closeIdleAfterMs: int('close-idle-after-ms', 0, MAX_TIMER_MS),
        pauseAfter: int('pause-after', 0, MAX),
        pauseMs: int('pause-ms', 0, MAX_TIMER_MS) ?? 1000,
        pauseMidEvent: flag('pause-mid-event'),
        firstEventAfterMs: int('first-event-after-ms', 0, MAX_TIMER_MS) ?? 0,
        commentEveryMs: int('comment-every-ms', 1, MAX_TIMER_MS),
        errorEvent: errorType(),
        resetAfterHeaders: flag('reset-after-headers'),
      },
    }
  } catch (err) {
    if (err instanceof KnobError) return { ok: false, error: err.message }
    throw err
  }
}
