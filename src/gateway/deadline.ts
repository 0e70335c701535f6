// One Deadline per request (DESIGN.md principle 3): every time limit of the request lives here,
// on Node's own timers (undici's coarse timers never decide a cut). A Deadline holds one Node
// timer, set for the earliest limit that can fall due: re-arming a limit later (a chunk re-arms
// streamIdle) moves no timer; when the timer fires early for what is armed by then, it is set
// again for the rest. A limit fires at its own instant, never before.
import type { RouteTimeouts, LimitSource } from '../config/runtime.ts'
import { ROUTE_TIMEOUTS } from '../config/builtins.ts'
import type { Ending, Outcome } from './outcome.ts'

/** setTimeout's largest delay; longer budgets are clamped to it (about 24.8 days). */
export const TIMER_MAX_MS = 2 ** 31 - 1

export interface RequestLimits {
  /** The whole exchange; null = unlimited. */
  readonly totalMs: number | null
  readonly totalOutcome: typeof ROUTE_TIMEOUTS.request.outcome | typeof ROUTE_TIMEOUTS.maxClientTimeout.outcome
  readonly totalSource: LimitSource
  /** Until response headers, only when shorter than the total budget; null = none of its own. */
  readonly firstByteMs: number | null
  /** firstByte's outcome: the route's, or the client's when its SDK's timeout is the shorter wait. */
  readonly firstByteOutcome: typeof ROUTE_TIMEOUTS.firstByte.outcome | typeof ROUTE_TIMEOUTS.maxClientTimeout.outcome
  readonly streamIdleMs: number | null
  /**
   * From the response headers to the first answer event, when it has a clock of its own
   * (timeouts.firstEvent written); null with awaitsFirstEvent = the wait is unlimited.
   */
  readonly firstEventMs: number | null
  /** firstEvent has a clock of its own: streamIdle starts at the first event, not at the headers. */
  readonly awaitsFirstEvent: boolean
  /** A WebSocket tunnel's silence in both directions (tunnels only); null = unlimited. */
  readonly tunnelIdleMs?: number | null
}

/**
 * The client's own budget in ms: its x-longhaul-timeout-ms, else the X-Stainless-Timeout (seconds)
 * that the OpenAI and Anthropic SDKs send with every request. undefined = none; a string = why
 * the header is malformed (bad_request).
 */
export function clientBudgetMs (longhaulHeader: string | undefined, sdkHeader: string | undefined): number | undefined | string {
  if (longhaulHeader !== undefined) {
    if (!/^\d{1,16}$/.test(longhaulHeader)) return `x-longhaul-timeout-ms must be a non-negative integer of milliseconds, got '${longhaulHeader.slice(0, 40)}'`
    return Math.min(Number(longhaulHeader), TIMER_MAX_MS)
  }
  if (sdkHeader === undefined) return undefined
  // The Python SDKs send a float ('600.0'); the JavaScript ones whole seconds, truncated, so a
  // timeout under a second arrives as '0': no budget then (the SDK's own timer still runs).
  if (!/^\d{1,9}(\.\d{1,9})?$/.test(sdkHeader)) return `X-Stainless-Timeout must be a number of seconds, got '${sdkHeader.slice(0, 40)}'`
  const ms = Math.round(Number(sdkHeader) * 1000)
  return ms === 0 ? undefined : Math.min(ms, TIMER_MAX_MS)
}

/**
 * The limits of one request from the route's timeouts and the client's own budget (clientBudgetMs).
 * x-longhaul-timeout-ms may shorten `request`, and lengthen it up to `maxClientTimeout`. An SDK's
 * X-Stainless-Timeout bounds only the wait for response headers, as the SDKs' own timers do (they
 * stop at the headers): it never cuts a stream the SDK is still reading. The outcome names the
 * limit that binds: the client's budget when it is the shorter one.
 * Returns a string (the reason) for a malformed header: that is bad_request.
 */
export function resolveLimits (t: RouteTimeouts, clientHeader: string | undefined, sdkHeader?: string): RequestLimits | string {
  let totalMs = t.request.ms
  let totalOutcome: RequestLimits['totalOutcome'] = ROUTE_TIMEOUTS.request.outcome
  let totalSource = t.request.source
  const budget = clientBudgetMs(clientHeader, sdkHeader)
  if (typeof budget === 'string') return budget
  const sdkWaitMs = clientHeader === undefined ? budget : undefined
  if (budget !== undefined && sdkWaitMs === undefined) {
    const clientMs = budget
    if (totalMs === null || clientMs < totalMs) {
      totalMs = clientMs
      totalOutcome = ROUTE_TIMEOUTS.maxClientTimeout.outcome
      totalSource = 'client'
    } else if (clientMs > totalMs) {
      const cap = t.maxClientTimeout.ms
      if (cap === null || clientMs <= cap) {
        totalMs = clientMs
        totalOutcome = ROUTE_TIMEOUTS.maxClientTimeout.outcome
        totalSource = 'client'
      } else if (cap > totalMs) {
        totalMs = cap // the route's cap binds, not the client's budget
        totalSource = t.maxClientTimeout.source
      }
    }
  }
  if (totalMs !== null) totalMs = Math.min(totalMs, TIMER_MAX_MS)
  const own = t.firstByteFollowsRequest ? null : t.firstByte.ms
  let firstByteMs = own !== null && (totalMs === null || own < totalMs) ? own : null
  let firstByteOutcome: RequestLimits['firstByteOutcome'] = ROUTE_TIMEOUTS.firstByte.outcome
  const headersBound = firstByteMs ?? totalMs
  if (sdkWaitMs !== undefined && (headersBound === null || sdkWaitMs < headersBound)) {
    firstByteMs = sdkWaitMs
    firstByteOutcome = ROUTE_TIMEOUTS.maxClientTimeout.outcome
  }
  const clamp = (ms: number | null): number | null => ms === null ? null : Math.min(ms, TIMER_MAX_MS)
  return {
    totalMs,
    totalOutcome,
    totalSource,
    firstByteMs,
    firstByteOutcome,
    streamIdleMs: clamp(t.streamIdle.ms),
    firstEventMs: t.firstEventFollowsStreamIdle ? null : clamp(t.firstEvent.ms),
    awaitsFirstEvent: !t.firstEventFollowsStreamIdle
  }
}

export interface DownstreamLimits {
  readonly bodyIdleTimeoutMs: number
  readonly sendTimeoutMs: number
}

const SLOTS = ['total', 'firstByte', 'firstEvent', 'streamIdle', 'bodyIdle', 'send', 'tunnelIdle'] as const
type Slot = typeof SLOTS[number]

/** Time and timers, injectable so the Deadline can be unit-tested on a clock the test moves. */
export interface Clock {
  now (): number
  setTimeout (fire: () => void, ms: number): object
  clearTimeout (timer: object): void
}

/** Node's own timers and performance.now(). */
export const NODE_CLOCK: Clock = {
  now: () => performance.now(),
  setTimeout: (fire, ms) => setTimeout(fire, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout)
}

/** One limit of a request: whether its clock runs, and since when. Made on first arm. */
class Limit {
  armed = false
  /** When it was last armed (the clock's time): when it falls due, how far it has run. */
  armedAt = 0
  readonly ms: number
  readonly outcome: Outcome
  constructor (ms: number, outcome: Outcome) {
    this.ms = ms
    this.outcome = outcome
  }

  get dueAt (): number { return this.armedAt + this.ms }
}

/** The name each limit's clock has in config and on the admin page. */
const SLOT_LIMIT: Readonly<Record<Slot, string>> = {
  total: 'request',
  firstByte: 'firstByte',
  firstEvent: 'firstEvent',
  streamIdle: 'streamIdle',
  bodyIdle: 'bodyIdleTimeout',
  send: 'sendTimeout',
  tunnelIdle: 'tunnelIdle'
}

/** A running limit: how far it is towards firing. */
export interface LimitProgress {
  readonly limit: string
  readonly outcome: Outcome
  readonly limitMs: number
  readonly elapsedMs: number
}

export type Phase = 'request' | 'response' | 'done'

export class Deadline {
  readonly limits: RequestLimits
  readonly startedAt: number
  phase: Phase = 'request'
  readonly #clock: Clock
  readonly #onLimit: (ending: Ending) => void
  readonly #downstream: DownstreamLimits
  /**
   * Each limit, made when it is first armed: most requests never arm most of them (bodyIdle,
   * send, firstEvent, tunnelIdle), and a stream held open holds only what it armed. All keys
   * present from the start, so every Deadline has one shape.
   */
  readonly #slots: Record<Slot, Limit | undefined> = { total: undefined, firstByte: undefined, firstEvent: undefined, streamIdle: undefined, bodyIdle: undefined, send: undefined, tunnelIdle: undefined }
  /** The one Node timer, and the instant it is set for (Infinity: none). */
  #timer: object | undefined = undefined
  #timerAt = Infinity
  readonly #timerFired = (): void => this.#onTimer()
  #idlePaused = false
  /** Headroom: the longest silence of the response body and of the upload (ms), and since when each is silent. */
  longestSilenceMs: number | null = null
  longestUploadSilenceMs: number | null = null
  #silentSince = 0
  #uploadWaitSince = 0
  /** Between the response headers and the first answer event, when firstEvent has a clock of its own. */
  #awaitingFirstEvent = false
  /** The upstream's response ended: only the flush to the client is left. */
  #upstreamEnded = false

  constructor (limits: RequestLimits, downstream: DownstreamLimits, onLimit: (ending: Ending) => void, clock: Clock = NODE_CLOCK) {
    this.limits = limits
    this.#clock = clock
    this.startedAt = clock.now()
    this.#onLimit = onLimit
    this.#downstream = downstream
    this.#arm('total', this.startedAt)
    this.#arm('firstByte', this.startedAt)
  }

  /** Arms a limit (made on first use); a limit the request does not have stays unarmed. */
  #arm (slot: Slot, now: number): void {
    if (this.phase === 'done') return // a late event after the end arms nothing
    let limit = this.#slots[slot]
    if (limit === undefined) {
      const ms = this.#limitMs(slot)
      if (ms === null) return
      limit = this.#slots[slot] = new Limit(ms, this.#outcomeOf(slot))
    }
    limit.armed = true
    limit.armedAt = now
    // A timer set for an earlier instant stays: when it fires, it is set again for the rest.
    if (limit.dueAt < this.#timerAt) this.#setTimer(limit.dueAt, now)
  }

  /** Sets the one timer for `at` (the clock's time), replacing the one set. */
  #setTimer (at: number, now: number): void {
    this.#clearTimer()
    this.#timerAt = at
    // Node's timers count whole milliseconds and may run a fraction early against the clock: the
    // rest is rounded up, and #onTimer sets the timer again if it did.
    this.#timer = this.#clock.setTimeout(this.#timerFired, Math.max(1, Math.ceil(at - now)))
  }

  #clearTimer (): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#timer = undefined
    this.#timerAt = Infinity
  }

  /** The timer fired: the earliest armed limit fires if it is due, or the timer is set for it. */
  #onTimer (): void {
    this.#timer = undefined
    this.#timerAt = Infinity
    if (this.phase === 'done') return
    let next: Limit | undefined
    for (const slot of SLOTS) {
      const limit = this.#slots[slot]
      if (limit !== undefined && limit.armed && (next === undefined || limit.dueAt < next.dueAt)) next = limit
    }
    if (next === undefined) return
    const now = this.#clock.now()
    if (next.dueAt > now) return this.#setTimer(next.dueAt, now)
    next.armed = false
    this.#fire(next.outcome, next.ms)
    // A limit that does not end the request (a held response retried) leaves the others running.
    if ((this.phase as Phase) !== 'done' && this.#timer === undefined) this.#onTimer()
  }

  /** A limit stops running; a timer set for it stays and, when it fires, finds it disarmed. */
  #disarm (slot: Slot): void {
    const limit = this.#slots[slot]
    if (limit !== undefined) limit.armed = false
  }

  /** A limit that cannot run again for this request: it is not kept (a stream open for hours holds no spent firstByte). */
  #drop (slot: Slot): void {
    this.#slots[slot] = undefined
  }

  #limitMs (slot: Slot): number | null {
    const { limits } = this
    switch (slot) {
      case 'total': return limits.totalMs
      case 'firstByte': return limits.firstByteMs
      case 'firstEvent': return limits.firstEventMs
      case 'streamIdle': return limits.streamIdleMs
      case 'bodyIdle': return this.#downstream.bodyIdleTimeoutMs
      case 'send': return this.#downstream.sendTimeoutMs
      case 'tunnelIdle': return limits.tunnelIdleMs ?? null
    }
  }

  #outcomeOf (slot: Slot): Outcome {
    switch (slot) {
      case 'total': return this.limits.totalOutcome
      case 'firstByte': return this.limits.firstByteOutcome
      case 'bodyIdle': return 'request_body_timeout'
      case 'send': return 'client_send_timeout'
      default: return ROUTE_TIMEOUTS[slot].outcome
    }
  }

  #fire (outcome: Outcome, limitMs: number): void {
    if (this.phase === 'done') return
    this.#onLimit({ outcome, limitMs })
  }

  elapsedMs (): number { return Math.round(this.#clock.now() - this.startedAt) }

  /** Budget left for the upstream (x-longhaul-timeout-ms), at least 1 (0 would read as "none"); null when unlimited. */
  remainingMs (): number | null {
    if (this.limits.totalMs === null) return null
    return Math.max(1, Math.floor(this.limits.totalMs - (this.#clock.now() - this.startedAt)))
  }

  /**
   * Response headers arrived: the first-byte clock stops; the first-event clock starts, or the
   * stream-idle clock when firstEvent follows it. Once per response: a gate that held the
   * headers passes them on later without restarting a clock.
   */
  responseStarted (): void {
    if (this.phase === 'response') return
    const now = this.#clock.now()
    this.phase = 'response'
    this.#drop('firstByte')
    this.longestSilenceMs = 0
    this.#silentSince = now
    if (this.limits.awaitsFirstEvent) {
      this.#awaitingFirstEvent = true
      this.#arm('firstEvent', now)
    } else if (!this.#idlePaused) {
      this.#arm('streamIdle', now)
    }
  }

  /** The first answer event arrived: from now on streamIdle governs the gaps. */
  firstEventArrived (): void {
    if (!this.#awaitingFirstEvent) return
    const now = this.#clock.now()
    this.#awaitingFirstEvent = false
    this.#silentSince = now
    this.#disarm('firstEvent')
    if (!this.#idlePaused) this.#arm('streamIdle', now)
  }

  /**
   * A held response failed before its first event and is tried again (the first-event gate): the
   * clocks go back to waiting for response headers, on the request's total budget (firstByte,
   * counted from the request's arrival, is spent once).
   */
  retryingResponse (): void {
    if (this.phase !== 'response') return
    this.phase = 'request'
    this.#awaitingFirstEvent = false
    this.#disarm('firstEvent')
    this.#disarm('streamIdle')
  }

  /** A response body chunk arrived: the upstream is not silent (the first-event wait is not over by that). */
  touch (): void {
    if (this.#idlePaused) return
    const now = this.#clock.now()
    // The wait for the first event is firstEvent's, not a silence streamIdle (or its headroom) counts.
    if (this.#awaitingFirstEvent) {
      this.#silentSince = now
      return
    }
    this.#silenceEnded(now)
    this.#arm('streamIdle', now)
  }

  /** A silence of the response body ended now (a chunk, or the end): remember the longest. */
  #silenceEnded (now: number): void {
    const silence = now - this.#silentSince
    if (silence > this.longestSilenceMs!) this.longestSilenceMs = silence
    this.#silentSince = now
  }

  /**
   * The client holds the response back (backpressure): the upstream is not silent, the client is
   * slow, so streamIdle pauses and sendTimeout runs instead (DESIGN.md §11).
   */
  sendBlocked (): void {
    this.#idlePaused = true
    this.#disarm('streamIdle')
    this.#arm('send', this.#clock.now())
  }

  sendDrained (): void {
    const now = this.#clock.now()
    // After the upstream's end, a drain is the client's progress on the rest: sendTimeout restarts.
    if (this.#upstreamEnded) return this.#arm('send', now)
    this.#idlePaused = false
    this.#disarm('send')
    // The time the client held the response back was no silence of the upstream's.
    this.#silentSince = now
    if (this.phase === 'response' && !this.#awaitingFirstEvent) this.#arm('streamIdle', now)
  }

  /**
   * The upstream's response ended: no upstream clock (firstEvent, streamIdle) may fire any more.
   * While the client has not taken the last bytes (`unsent`), sendTimeout bounds the flush, so a
   * client that stalls at the very end is cut as client_send_timeout.
   */
  responseEnded (unsent: boolean): void {
    const now = this.#clock.now()
    if (this.phase === 'response' && this.longestSilenceMs !== null && !this.#idlePaused) this.#silenceEnded(now)
    this.#upstreamEnded = true
    this.#awaitingFirstEvent = false
    this.#idlePaused = true
    this.#disarm('firstEvent')
    this.#disarm('streamIdle')
    if (unsent && this.#slots.send?.armed !== true) this.#arm('send', now)
  }

  /**
   * The upstream switched protocols (101): a tunnel is open. The first-byte clock stops and the
   * tunnel-idle clock starts; `request` (the total) keeps bounding the tunnel's life.
   */
  tunnelOpened (): void {
    this.phase = 'response'
    this.#drop('firstByte')
    this.#arm('tunnelIdle', this.#clock.now())
  }

  /** Bytes crossed the tunnel, either way. */
  tunnelActivity (): void { this.#arm('tunnelIdle', this.#clock.now()) }

  /** The gateway waits for the next request body chunk from the client. */
  awaitingBody (): void {
    this.#uploadWaitSince = this.#clock.now()
    this.#arm('bodyIdle', this.#uploadWaitSince)
  }

  bodyArrived (): void {
    if (this.#uploadWaitSince === 0) return
    const silence = this.#clock.now() - this.#uploadWaitSince
    this.#uploadWaitSince = 0
    if (this.longestUploadSilenceMs === null || silence > this.longestUploadSilenceMs) this.longestUploadSilenceMs = silence
    this.#disarm('bodyIdle')
  }

  /** The request ended, whatever the outcome: no limit may fire after this. */
  stop (): void {
    // The silence before the end (or before the cut) counts too.
    if (this.phase === 'response' && this.longestSilenceMs !== null && !this.#idlePaused) this.#silenceEnded(this.#clock.now())
    this.phase = 'done'
    this.#clearTimer()
    for (const slot of SLOTS) this.#slots[slot] = undefined
  }

  /** The limits running now and how far each is towards firing (the live admin page). */
  progress (): LimitProgress[] {
    const now = this.#clock.now()
    const out: LimitProgress[] = []
    for (const slot of SLOTS) {
      const running = this.#slots[slot]
      if (running === undefined || !running.armed) continue
      const limit = running.outcome === 'client_deadline_exceeded' ? 'client deadline' : SLOT_LIMIT[slot]
      out.push({ limit, outcome: running.outcome, limitMs: running.ms, elapsedMs: Math.round(now - running.armedAt) })
    }
    return out
  }
}
