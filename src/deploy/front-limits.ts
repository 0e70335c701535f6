// What a load balancer in front of longhaul must allow, derived from the config: how long a
// healthy request may last, how long it may stay silent, how long a rollout drains. The load
// balancer's limits are set a margin above longhaul's, so longhaul's named timeout fires first and
// the client reads its name (an SSE record, x-longhaul-error), not a load balancer's bare 502/504.
import type { RuntimeConfig } from '../config/runtime.ts'
import { formatDuration } from '../config/units.ts'

/** Seconds the load balancer waits beyond longhaul's own limit. */
export const MARGIN_SECONDS = 5
/** Seconds the pod's grace period adds to drain.delay + drain.timeout: the cut requests' error records, the log flush, exit. */
export const GRACE_MARGIN_SECONDS = 10

export interface Bound {
  /** null: unbounded (a route with `none`). */
  readonly ms: number | null
  /** Which limit of which route it comes from, for the comments in the manifests. */
  readonly why: string
}

export interface FrontLimits {
  /** The longest a request may last: a route's `request`, or its `maxClientTimeout` when a client may extend it. */
  readonly longestRequest: Bound
  /** The longest a healthy exchange may send no byte: waiting for response headers, between body chunks, an upload pausing, a quiet tunnel. */
  readonly longestSilence: Bound
  /** downstream.idleTimeout: a load balancer's keep-alive to longhaul must end before it. */
  readonly idleTimeoutMs: number
  /** drain.delay + drain.timeout: the longest a terminating pod still serves. */
  readonly drainMs: number
}

function longest (candidates: Array<{ ms: number | null, why: string }>): Bound {
  let best: Bound = { ms: 0, why: 'no limit' }
  for (const c of candidates) {
    if (c.ms === null) return c
    if (best.ms !== null && c.ms > best.ms) best = c
  }
  return best
}


export function frontLimits (config: RuntimeConfig): FrontLimits {
  const requests: Array<{ ms: number | null, why: string }> = []
  const silences: Array<{ ms: number | null, why: string }> = [
    { ms: config.downstream.bodyIdleTimeoutMs, why: `downstream.bodyIdleTimeout ${formatDuration(config.downstream.bodyIdleTimeoutMs)} (an upload pausing)` }
  ]
  for (const route of config.routes) {
    const t = route.timeouts
    // A client's x-longhaul-timeout-ms may extend `request` up to maxClientTimeout.
    const extended = t.maxClientTimeout.ms === null || (t.request.ms !== null && t.maxClientTimeout.ms > t.request.ms)
    const [which, request] = extended ? ['maxClientTimeout', t.maxClientTimeout.ms] : ['request', t.request.ms]
    requests.push({ ms: request, why: `route ${route.name}: ${which} ${formatDuration(request)}` })
    // Before its headers, a response is silent until firstByte (which follows the request limit when unset).
    const firstByte = t.firstByteFollowsRequest ? request : t.firstByte.ms
    silences.push({ ms: firstByte, why: `route ${route.name}: firstByte ${formatDuration(firstByte)} (waiting for response headers)` })
    silences.push({ ms: t.streamIdle.ms, why: `route ${route.name}: streamIdle ${formatDuration(t.streamIdle.ms)} (between response chunks)` })
    silences.push({ ms: t.tunnelIdle.ms, why: `route ${route.name}: tunnelIdle ${formatDuration(t.tunnelIdle.ms)} (a quiet WebSocket)` })
  }
  return {
    longestRequest: longest(requests),
    longestSilence: longest(silences),
    idleTimeoutMs: config.downstream.idleTimeoutMs,
    drainMs: config.drain.delayMs + config.drain.timeoutMs
  }
}

/** Whole seconds above a bound: rounded up, plus the margin. */
export function secondsAbove (ms: number): number {
  return Math.ceil(ms / 1000) + MARGIN_SECONDS
}

/** terminationGracePeriodSeconds: drain.delay + drain.timeout + a margin. */
export function gracePeriodSeconds (limits: FrontLimits): number {
  return Math.ceil(limits.drainMs / 1000) + GRACE_MARGIN_SECONDS
}
