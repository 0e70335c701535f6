// resolveLimits: a route's timeouts and the client's x-longhaul-timeout-ms make one request's
// limits, and the outcome names the limit that binds (DESIGN.md §11).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { clientBudgetMs, resolveLimits, TIMER_MAX_MS, type RequestLimits } from '../src/gateway/deadline.ts'
import type { Limit, LimitSource, RouteTimeouts } from '../src/config/runtime.ts'

const S = 1000
const M = 60_000

const route = (ms: number | null, source: LimitSource = 'route'): Limit => ({ ms, source })

/**
 * RouteTimeouts as resolve.ts builds them: firstByte follows request unless written,
 * maxClientTimeout defaults to request, streamIdle to 5m.
 */
function timeouts (t: { request: number | null, firstByte?: number | null, streamIdle?: number | null, firstEvent?: number | null, maxClientTimeout?: number | null }): RouteTimeouts {
  const streamIdle = t.streamIdle === undefined ? route(5 * M, 'default') : route(t.streamIdle)
  return {
    request: route(t.request),
    firstByte: t.firstByte === undefined ? route(t.request, 'default') : route(t.firstByte),
    firstByteFollowsRequest: t.firstByte === undefined,
    streamIdle,
    firstEvent: t.firstEvent === undefined ? route(streamIdle.ms, 'default') : route(t.firstEvent),
    firstEventFollowsStreamIdle: t.firstEvent === undefined,
    maxClientTimeout: t.maxClientTimeout === undefined ? route(t.request, 'default') : route(t.maxClientTimeout),
    tunnelIdle: route(5 * M, 'default')
  }
}

function limits (t: RouteTimeouts, header: string | undefined): RequestLimits {
  const result = resolveLimits(t, header)
  assert.equal(typeof result, 'object', `expected limits, got ${String(result)}`)
  return result as RequestLimits
}

test('the request budget: route limit, client shortening, client extension up to maxClientTimeout', () => {
  const table: Array<{ name: string, t: RouteTimeouts, header: string | undefined, totalMs: number | null, totalOutcome: RequestLimits['totalOutcome'], totalSource: LimitSource }> = [
    { name: 'no header: the route request limit', t: timeouts({ request: 10 * M }), header: undefined, totalMs: 10 * M, totalOutcome: 'request_timeout', totalSource: 'route' },
    { name: 'client shortens', t: timeouts({ request: 10 * M }), header: '5000', totalMs: 5 * S, totalOutcome: 'client_deadline_exceeded', totalSource: 'client' },
    { name: 'client equal to request: the route limit stays', t: timeouts({ request: 10 * M }), header: String(10 * M), totalMs: 10 * M, totalOutcome: 'request_timeout', totalSource: 'route' },
    { name: 'client longer, no maxClientTimeout: cannot lengthen', t: timeouts({ request: 10 * M }), header: String(15 * M), totalMs: 10 * M, totalOutcome: 'request_timeout', totalSource: 'route' },
    { name: 'client within maxClientTimeout', t: timeouts({ request: 10 * M, maxClientTimeout: 30 * M }), header: String(20 * M), totalMs: 20 * M, totalOutcome: 'client_deadline_exceeded', totalSource: 'client' },
    { name: 'client exactly at maxClientTimeout', t: timeouts({ request: 10 * M, maxClientTimeout: 30 * M }), header: String(30 * M), totalMs: 30 * M, totalOutcome: 'client_deadline_exceeded', totalSource: 'client' },
    { name: 'client beyond maxClientTimeout: capped, the route limit fires', t: timeouts({ request: 10 * M, maxClientTimeout: 30 * M }), header: String(60 * M), totalMs: 30 * M, totalOutcome: 'request_timeout', totalSource: 'route' },
    { name: 'maxClientTimeout none: any extension', t: timeouts({ request: 10 * M, maxClientTimeout: null }), header: String(600 * M), totalMs: 600 * M, totalOutcome: 'client_deadline_exceeded', totalSource: 'client' },
    { name: "'0' is a valid (already expired) budget", t: timeouts({ request: 10 * M }), header: '0', totalMs: 0, totalOutcome: 'client_deadline_exceeded', totalSource: 'client' },
    { name: 'leading zeros are still an integer', t: timeouts({ request: 10 * M }), header: '0042', totalMs: 42, totalOutcome: 'client_deadline_exceeded', totalSource: 'client' },
    { name: 'request none, no header: unlimited', t: timeouts({ request: null, firstByte: null }), header: undefined, totalMs: null, totalOutcome: 'request_timeout', totalSource: 'route' },
    { name: 'request none: a client budget bounds it', t: timeouts({ request: null, firstByte: null }), header: '5000', totalMs: 5 * S, totalOutcome: 'client_deadline_exceeded', totalSource: 'client' },
    { name: 'a huge client budget is clamped to the timer maximum', t: timeouts({ request: null, firstByte: null }), header: '9999999999999999', totalMs: TIMER_MAX_MS, totalOutcome: 'client_deadline_exceeded', totalSource: 'client' },
    { name: 'a route limit above the timer maximum is clamped', t: timeouts({ request: 720 * 60 * M }), header: undefined, totalMs: TIMER_MAX_MS, totalOutcome: 'request_timeout', totalSource: 'route' }
  ]
  for (const row of table) {
    const l = limits(row.t, row.header)
    assert.deepEqual({ totalMs: l.totalMs, totalOutcome: l.totalOutcome, totalSource: l.totalSource }, { totalMs: row.totalMs, totalOutcome: row.totalOutcome, totalSource: row.totalSource }, row.name)
  }
})

test('a cap by maxClientTimeout reports the source of maxClientTimeout', () => {
  const t: RouteTimeouts = { ...timeouts({ request: 10 * M }), request: route(10 * M, 'defaults'), maxClientTimeout: route(30 * M, 'route') }
  const l = limits(t, String(60 * M))
  assert.equal(l.totalMs, 30 * M)
  assert.equal(l.totalOutcome, 'request_timeout')
  assert.equal(l.totalSource, 'route')
})

test('a malformed, negative or non-integer header is a reason string (bad_request)', () => {
  const t = timeouts({ request: 10 * M })
  for (const header of ['abc', '-5', '1.5', '', ' 5', '5 ', '+5', '1e3', '0x10', '5s', '12345678901234567']) {
    const result = resolveLimits(t, header)
    assert.equal(typeof result, 'string', `${JSON.stringify(header)} gave ${JSON.stringify(result)}`)
    assert.match(result as string, /x-longhaul-timeout-ms must be a non-negative integer/)
  }
})

test('the reason quotes at most 40 characters of the header', () => {
  const result = resolveLimits(timeouts({ request: 10 * M }), 'x'.repeat(1000))
  assert.equal(typeof result, 'string')
  assert.ok((result as string).includes(`'${'x'.repeat(40)}'`))
  assert.ok(!(result as string).includes('x'.repeat(41)))
})

test('firstByte: kept while shorter than the total budget, null when it follows the request', () => {
  const table: Array<{ name: string, t: RouteTimeouts, header: string | undefined, firstByteMs: number | null }> = [
    { name: 'shorter than request: kept', t: timeouts({ request: 10 * M, firstByte: 2 * M }), header: undefined, firstByteMs: 2 * M },
    { name: 'follows request: none of its own', t: timeouts({ request: 10 * M }), header: undefined, firstByteMs: null },
    { name: 'follows request, client shortens: still none of its own', t: timeouts({ request: 10 * M }), header: '5000', firstByteMs: null },
    { name: 'equal to request: the total fires first', t: timeouts({ request: 10 * M, firstByte: 10 * M }), header: undefined, firstByteMs: null },
    { name: 'client budget ends before firstByte: client_deadline_exceeded, not first_byte_timeout', t: timeouts({ request: 10 * M, firstByte: 2 * M }), header: String(M), firstByteMs: null },
    { name: 'longer than request, client extends past it: kept', t: timeouts({ request: 10 * M, firstByte: 20 * M, maxClientTimeout: 30 * M }), header: String(25 * M), firstByteMs: 20 * M },
    { name: 'longer than request, no extension: null', t: timeouts({ request: 10 * M, firstByte: 20 * M, maxClientTimeout: 30 * M }), header: undefined, firstByteMs: null },
    { name: 'request none, firstByte written: kept', t: timeouts({ request: null, firstByte: 2 * M }), header: undefined, firstByteMs: 2 * M },
    { name: 'request none, firstByte none: unlimited', t: timeouts({ request: null, firstByte: null }), header: undefined, firstByteMs: null }
  ]
  for (const row of table) assert.equal(limits(row.t, row.header).firstByteMs, row.firstByteMs, row.name)
})

test('streamIdle passes through, none stays null, and is clamped to the timer maximum', () => {
  assert.equal(limits(timeouts({ request: 10 * M, streamIdle: 90 * S }), undefined).streamIdleMs, 90 * S)
  assert.equal(limits(timeouts({ request: 10 * M, streamIdle: null }), undefined).streamIdleMs, null)
  assert.equal(limits(timeouts({ request: null, firstByte: null, streamIdle: 720 * 60 * M }), undefined).streamIdleMs, TIMER_MAX_MS)
  // The client's budget never changes streamIdle.
  assert.equal(limits(timeouts({ request: 10 * M, streamIdle: 90 * S }), '1000').streamIdleMs, 90 * S)
})

test('the client budget: x-longhaul-timeout-ms, else the SDK\'s X-Stainless-Timeout in seconds; firstEvent only when written', () => {
  const table: Array<[string | undefined, string | undefined, number | undefined | RegExp]> = [
    [undefined, undefined, undefined],
    ['1500', undefined, 1500],
    [undefined, '1', 1000],
    [undefined, '600.0', 600_000], // the Python SDKs
    [undefined, '2.5', 2500],
    [undefined, '0', undefined], // a JavaScript SDK's timeout under a second, truncated: no budget
    ['1600', '1', 1600], // x-longhaul-timeout-ms wins, even when longer
    [undefined, 'soon', /X-Stainless-Timeout must be a number of seconds, got 'soon'/],
    [undefined, '-1', /X-Stainless-Timeout/],
    ['x', '1', /x-longhaul-timeout-ms must be/]
  ]
  for (const [longhaul, sdk, want] of table) {
    const got = clientBudgetMs(longhaul, sdk)
    if (want instanceof RegExp) assert.match(String(got), want)
    else assert.equal(got, want, `${longhaul} / ${sdk}`)
  }
  const viaSdk = limits(timeouts({ request: 10 * M }), undefined)
  assert.equal(viaSdk.awaitsFirstEvent, false)
  assert.equal(viaSdk.firstEventMs, null)
  // The SDK's timeout bounds the wait for headers only (the SDKs' timers stop there): the route's
  // request still bounds the stream.
  const sdk = resolveLimits(timeouts({ request: 10 * M, firstEvent: 3 * S }), undefined, '1') as RequestLimits
  assert.deepEqual([sdk.totalMs, sdk.totalOutcome, sdk.totalSource, sdk.firstByteMs, sdk.firstByteOutcome, sdk.firstEventMs, sdk.awaitsFirstEvent], [10 * M, 'request_timeout', 'route', 1000, 'client_deadline_exceeded', 3000, true])
  // Longer than the route's own wait for headers: the route's binds, with its own name.
  const longer = resolveLimits(timeouts({ request: 10 * M, firstByte: 30 * S }), undefined, '600') as RequestLimits
  assert.deepEqual([longer.totalMs, longer.firstByteMs, longer.firstByteOutcome], [10 * M, 30 * S, 'first_byte_timeout'])
  // Never lengthens request, whatever maxClientTimeout allows (x-longhaul-timeout-ms may).
  const capped = resolveLimits(timeouts({ request: 10 * M, maxClientTimeout: 60 * M }), undefined, '1800') as RequestLimits
  assert.deepEqual([capped.totalMs, capped.totalOutcome, capped.firstByteMs], [10 * M, 'request_timeout', null])
  const unlimited = resolveLimits(timeouts({ request: null, firstByte: null }), undefined, '5') as RequestLimits
  assert.deepEqual([unlimited.totalMs, unlimited.firstByteMs, unlimited.firstByteOutcome], [null, 5000, 'client_deadline_exceeded'])
})
