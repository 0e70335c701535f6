// Whether a failed attempt is tried again follows from the kind of failure (like Caddy's
// tryAgain): a connect failure never reached a backend; a reset or a status may have.
import type { RetryPolicy } from '../config/runtime.ts'

export type RetryReason = 'connect_failure' | 'reset_before_response' | 'stale_connection' | `status_${number}` | HeldFailure

/** Failures of a response whose headers the first-event gate (sse.holdHeaders) still holds. */
export type HeldFailure = 'error_event' | 'first_event_timeout'

/** RFC 9110 §9.2.2: methods whose repetition has the same effect as one request. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])
export const isIdempotent = (method: string): boolean => IDEMPOTENT.has(method)

/** What a failure before any response byte says about retrying (gateway/classify.ts decides it). */
export type FailureKind = 'connect' | 'reset' | 'other'

export interface AttemptContext {
  method: string
  /** The request body can be sent again (none, buffered, or never started). */
  replayable: boolean
  /** Tries so far, the failed one included. */
  attempts: number
  staleRetried: boolean
  budgetAllows: boolean
}

/** The reason to retry a failure that happened before any response byte, or null. */
export function retryAfterFailure (policy: RetryPolicy, failure: { kind: FailureKind, stale: boolean }, ctx: AttemptContext): RetryReason | null {
  if (!ctx.replayable) return null
  const { kind } = failure
  const idempotent = isIdempotent(ctx.method)
  // The stale-connection retry happens whatever the policy says: nothing reached the backend's
  // application, and a fresh connection is the fix.
  if (kind === 'reset' && idempotent && !ctx.staleRetried && failure.stale) return 'stale_connection'
  if (ctx.attempts >= policy.attempts) return null
  // A connect failure is outside the retry budget: the failed try reached no backend, so its retry
  // adds no load a budget must guard against, and a killed endpoint costs no request.
  if (kind === 'connect' && policy.onConnectFailure) return 'connect_failure'
  if (kind === 'reset' && policy.onReset && (idempotent || policy.nonIdempotent) && ctx.budgetAllows) return 'reset_before_response'
  return null
}

export function retryOnStatus (policy: RetryPolicy, status: number, ctx: AttemptContext): RetryReason | null {
  if (!policy.onStatus.has(status) || !ctx.replayable || ctx.attempts >= policy.attempts || !ctx.budgetAllows) return null
  if (!isIdempotent(ctx.method) && !policy.nonIdempotent) return null
  return `status_${status}`
}

/**
 * The reason to retry a held response that failed before its first event (an in-band error
 * record, a firstEvent cut), or null. Like a status: the backend had the request.
 */
export function retryHeldFailure (policy: RetryPolicy, failure: HeldFailure, ctx: AttemptContext): RetryReason | null {
  const wanted = failure === 'error_event' ? policy.onErrorEvent : policy.onFirstEventTimeout
  if (!wanted || !ctx.replayable || ctx.attempts >= policy.attempts || !ctx.budgetAllows) return null
  if (!isIdempotent(ctx.method) && !policy.nonIdempotent) return null
  return failure
}

/**
 * Exponential backoff with full jitter (AWS architecture blog's "full jitter"): a random delay
 * up to base·2^(n-1), capped at max; a Retry-After the upstream sent wins, up to max too.
 */
export function backoffMs (policy: RetryPolicy, retryNumber: number, retryAfterMs: number | null, random: () => number = Math.random): number {
  if (retryAfterMs !== null) return Math.min(retryAfterMs, policy.backoffMaxMs)
  const ceiling = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** (retryNumber - 1))
  return Math.floor(random() * ceiling)
}

/** Retry-After as delay-seconds or an HTTP date (RFC 9110 §10.2.3), in ms; null when absent or bad. */
export function parseRetryAfter (value: string | string[] | undefined, now: number = Date.now()): number | null {
  if (typeof value !== 'string') return null
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? null : Math.max(0, date - now)
}

/** Retries that count against the budget: the stale-connection and connect-failure retries do not. */
export const countsAgainstBudget = (reason: RetryReason): boolean => reason !== 'stale_connection' && reason !== 'connect_failure'

/** Envoy's retry budget: retries in flight may be this share of active requests, and at least this many. */
export const MIN_RETRY_CONCURRENCY = 3
