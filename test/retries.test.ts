// Retries end to end (DESIGN.md §11 "Retry defaults", "Attempts"; SCENARIOS.md 2 and 4): what is
// retried, where, after how long, how many, and what never is: a request that may have reached a
// backend (a POST reset before its answer), a response that already started, a client that left.
// And the keep-alive race: a pooled connection the backend closes as the request goes out is
// retried once on a fresh connection for idempotent methods, whatever the retry policy says.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import { startGateway, type RunningGateway, type LogLine } from './helpers/gateway.ts'
import { closedPort, startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { assertAccess, assertGatewayError, rawExchange } from './helpers/faults.ts'
import { RawClient } from './helpers/raw-client.ts'
import { metric, startRacingBackend, waitFor, type RacingBackend } from './helpers/resilience.ts'

let demoA: DemoUpstream
let demoB: DemoUpstream
let raceFin: RacingBackend
let raceRst: RacingBackend
let racePost: RacingBackend
let racePostRetried: RacingBackend
let closedUrl: string
let gw: RunningGateway

before(async () => {
  ;[demoA, demoB, raceFin, raceRst, racePost, racePostRetried] = await Promise.all([
    startDemoUpstream(), startDemoUpstream(),
    startRacingBackend({ close: 'fin' }), startRacingBackend({ close: 'rst' }),
    startRacingBackend({ close: 'fin' }), startRacingBackend({ close: 'fin' })
  ])
  closedUrl = `http://127.0.0.1:${await closedPort()}`
  // Outlier ejection is off in effect (a threshold no test reaches) where a test provokes many
  // failures on purpose: ejection is health.test.ts's subject, and it would change where retries go.
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams:
  halfdead: { endpoints: [${closedUrl}, ${demoA.url}], outlier: { consecutiveFailures: 1000 } }
  dead: { endpoints: [${closedUrl}] }
  pair: { endpoints: [${demoA.url}, ${demoB.url}], outlier: { consecutiveFailures: 1000 } }
  resets: { endpoints: [${demoA.url}, ${demoB.url}], outlier: { consecutiveFailures: 1000 } }
  burst: { endpoints: [${demoA.url}, ${demoB.url}], outlier: { consecutiveFailures: 1000 } }
  racefin: { endpoints: [${raceFin.url}] }
  racerst: { endpoints: [${raceRst.url}] }
  racepost: { endpoints: [${racePost.url}] }
  racepostretried: { endpoints: [${racePostRetried.url}] }
routes:
  - { name: halfdead, match: { pathPrefix: /halfdead/ }, upstream: halfdead, rewrite: { stripPrefix: /halfdead } }
  - { name: dead, match: { pathPrefix: /dead/ }, upstream: dead, rewrite: { stripPrefix: /dead } }
  - name: backoff
    match: { pathPrefix: /backoff/ }
    upstream: pair
    rewrite: { stripPrefix: /backoff }
    retry: { on: ["503"], backoff: { base: 10ms, max: 10s } }
  - name: reset
    match: { pathPrefix: /reset/ }
    upstream: resets
    rewrite: { stripPrefix: /reset }
    retry: { on: [reset-before-response] }
  - { name: reset-default, match: { pathPrefix: /reset-default/ }, upstream: resets, rewrite: { stripPrefix: /reset-default } }
  - name: status
    match: { pathPrefix: /status/ }
    upstream: pair
    rewrite: { stripPrefix: /status }
    retry: { on: ["503"], backoff: { base: 10ms, max: 600ms } }
  - name: budget
    match: { pathPrefix: /budget/ }
    upstream: burst
    rewrite: { stripPrefix: /budget }
    retry: { on: ["503"] }
  - name: stream
    match: { pathPrefix: /stream/ }
    upstream: pair
    rewrite: { stripPrefix: /stream }
    retry: { attempts: 3, on: [connect-failure, reset-before-response] }
  - { name: racefin, match: { pathPrefix: /racefin/ }, upstream: racefin, rewrite: { stripPrefix: /racefin } }
  - { name: racerst, match: { pathPrefix: /racerst/ }, upstream: racerst, rewrite: { stripPrefix: /racerst } }
  - { name: racepost, match: { pathPrefix: /racepost/ }, upstream: racepost, rewrite: { stripPrefix: /racepost } }
  - name: racepostretried
    match: { pathPrefix: /racepostretried/ }
    upstream: racepostretried
    rewrite: { stripPrefix: /racepostretried }
    retry: { on: [reset-before-response], nonIdempotent: true }
`)
})

after(async () => {
  await gw?.stop()
  await Promise.all([demoA?.close(), demoB?.close(), raceFin?.close(), raceRst?.close(), racePost?.close(), racePostRetried?.close()])
})

interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: string, access: LogLine }

async function send (path: string, options: { method?: 'GET' | 'POST', headers?: Record<string, string>, body?: string } = {}): Promise<Answer> {
  const id = options.headers?.['x-request-id'] ?? randomUUID()
  const res = await request(`${gw.url}${path}`, { method: options.method ?? 'GET', headers: { ...options.headers, 'x-request-id': id }, body: options.body ?? null })
  const body = await res.body.text()
  return { status: res.statusCode, headers: res.headers, body, access: await gw.accessLine(id) }
}

/** Counts the upstream requests (on the demo upstreams) that carried one of these x-request-ids. */
function upstreamCalls (ids: ReadonlySet<string> | string): { byId: Map<string, Array<{ demo: string, at: number }>>, stop: () => void } {
  const wanted = typeof ids === 'string' ? new Set([ids]) : ids
  const byId = new Map<string, Array<{ demo: string, at: number }>>()
  const listeners = [demoA, demoB].map((demo) => {
    const listener = (e: { headers: Record<string, unknown> }): void => {
      const id = e.headers['x-request-id']
      if (typeof id !== 'string' || !wanted.has(id)) return
      byId.set(id, [...byId.get(id) ?? [], { demo: demo.url, at: performance.now() }])
    }
    demo.events.on('request', listener)
    return { demo, listener }
  })
  return { byId, stop: () => { for (const { demo, listener } of listeners) demo.events.off('request', listener) } }
}

const retries = (route: string, reason: string): Promise<number> => metric(gw, 'longhaul_retries_total', { route, reason })

test('default policy: a refused connect is retried once, on the other endpoint; every request succeeds', async () => {
  const ids = new Set<string>()
  const calls = upstreamCalls(ids)
  const before = await retries('halfdead', 'connect_failure')
  const answers: Array<Answer & { sent: string }> = []
  try {
    // Least-request between two idle endpoints is a coin toss: about half the requests try the
    // dead endpoint first. GETs and POSTs with a body: a connect failure never reached a backend,
    // so even a POST is retried, and its buffered body goes with the retry.
    for (let i = 0; i < 40; i++) {
      const id = `halfdead-${i}-${randomUUID()}`
      ids.add(id)
      const sent = i % 2 === 0 ? '' : `payload ${i} `.repeat(50)
      const res = i % 2 === 0
        ? await send('/halfdead/headers', { headers: { 'x-request-id': id } })
        : await send('/halfdead/echo', { method: 'POST', headers: { 'x-request-id': id, 'content-type': 'text/plain' }, body: sent })
      answers.push({ ...res, sent })
    }
  } finally {
    calls.stop()
  }
  for (const a of answers) {
    const ctx = JSON.stringify(a.access)
    assert.equal(a.status, 200, ctx)
    assertAccess(a.access, { outcome: 'ok', status: 200 })
    assert.equal(a.access.endpoint, demoA.url, ctx)
    assert.ok(a.access.attempts === 1 || a.access.attempts === 2, ctx)
    if (a.sent !== '') assert.equal(a.body, a.sent, `the POST's body arrived whole, retried or not: ${ctx}`)
    // The retry went to the live endpoint, which saw the request once.
    assert.equal(calls.byId.get(a.access.requestId as string)?.length, 1, ctx)
  }
  const retried = answers.filter((a) => a.access.attempts === 2)
  // 20 coin tosses each: none lost is a one-in-a-million run.
  assert.ok(retried.some((a) => a.access.method === 'GET'), 'GETs that tried the dead endpoint first were retried')
  assert.ok(retried.some((a) => a.access.method === 'POST'), 'POSTs are retried after a connect failure too')
  assert.equal(await retries('halfdead', 'connect_failure') - before, retried.length, 'one connect_failure retry per request with attempts 2')
})

test('one endpoint only: the retry goes to the same endpoint, and attempts counts the refused connects', async () => {
  const before = await retries('dead', 'connect_failure')
  const res = await send('/dead/headers')
  assertGatewayError(res, { outcome: 'upstream_unavailable', status: 503, proxyStatus: 'destination_unavailable', route: 'dead' })
  assertAccess(res.access, { outcome: 'upstream_unavailable', status: 503 })
  assert.equal(res.access.attempts, 2, JSON.stringify(res.access))
  assert.equal(res.access.endpoint, closedUrl)
  assert.equal(await retries('dead', 'connect_failure') - before, 1)
})

test('a POST that reached a backend which then reset is not retried, even with reset-before-response', async () => {
  const id = `post-reset-${randomUUID()}`
  const calls = upstreamCalls(id)
  const before = await metric(gw, 'longhaul_retries_total', { route: 'reset' })
  let res: Answer
  try {
    res = await send('/reset/echo', { method: 'POST', headers: { 'x-request-id': id, 'x-demo-reset-after': '0', 'content-type': 'text/plain' }, body: 'charge the card once' })
  } finally {
    calls.stop()
  }
  assertGatewayError(res, { outcome: 'upstream_reset', status: 502, proxyStatus: 'connection_terminated', route: 'reset' })
  assertAccess(res.access, { outcome: 'upstream_reset', status: 502 })
  assert.equal(res.access.attempts, 1, JSON.stringify(res.access))
  assert.equal(calls.byId.get(id)?.length, 1, 'the backends saw the POST exactly once')
  assert.equal(await metric(gw, 'longhaul_retries_total', { route: 'reset' }), before, 'no retry of any reason')
})

test('a GET reset before its response is retried on the other endpoint where the route says reset-before-response', async () => {
  const id = `get-reset-${randomUUID()}`
  const calls = upstreamCalls(id)
  const before = await retries('reset', 'reset_before_response')
  let res: Answer
  try {
    // The fault travels with the request, so the retry is reset too: the answer is still 502,
    // but each endpoint saw the request once.
    res = await send('/reset/headers', { headers: { 'x-request-id': id, 'x-demo-reset-after': '0' } })
  } finally {
    calls.stop()
  }
  assertGatewayError(res, { outcome: 'upstream_reset', status: 502, proxyStatus: 'connection_terminated', route: 'reset' })
  assert.equal(res.access.attempts, 2, JSON.stringify(res.access))
  const seen = calls.byId.get(id) ?? []
  assert.deepEqual(seen.map((c) => c.demo).sort(), [demoA.url, demoB.url].sort(), 'one try on each endpoint')
  // Every request of this upstream is reset, so no connection of its pool ever carried a
  // response: this is a plain reset before the response, not the keep-alive race.
  assert.equal(await retries('reset', 'reset_before_response') - before, 1)
  assert.equal(await retries('reset', 'stale_connection'), 0)
})

test('default policy: a GET reset on a fresh connection is not retried (only a reused one would be)', async () => {
  const id = `get-reset-default-${randomUUID()}`
  const calls = upstreamCalls(id)
  let res: Answer
  try {
    res = await send('/reset-default/headers', { headers: { 'x-request-id': id, 'x-demo-reset-after': '0' } })
  } finally {
    calls.stop()
  }
  assertGatewayError(res, { outcome: 'upstream_reset', status: 502, proxyStatus: 'connection_terminated', route: 'reset-default' })
  assert.equal(res.access.attempts, 1, `retry defaults: connect failures only (${JSON.stringify(res.access)})`)
  assert.equal(calls.byId.get(id)?.length, 1)
  assert.equal(await metric(gw, 'longhaul_retries_total', { route: 'reset-default' }), 0)
  // Nor is the endpoint's pooled idle time lowered: nothing showed that it closes idle connections early.
  assert.equal(gw.lines.filter((l) => l.msg === 'upstream warning' && String(l.warning).includes('pooled connection failed as it was reused') && (l.endpoint === demoA.url || l.endpoint === demoB.url)).length, 0)
})

test('a status retry honours Retry-After, capped at backoff.max', async () => {
  const id = `retry-after-${randomUUID()}`
  const calls = upstreamCalls(id)
  let res: Answer
  try {
    // Retry-After: 1 asks for 1 s; backoff.max is 600ms, so the retry waits 600 ms (the jittered
    // backoff alone would wait under 10 ms).
    res = await send('/status/headers', { headers: { 'x-request-id': id, 'x-demo-status': '503', 'x-demo-retry-after': '1' } })
  } finally {
    calls.stop()
  }
  const seen = calls.byId.get(id) ?? []
  assert.equal(seen.length, 2, JSON.stringify(res.access))
  assert.notEqual(seen[0]!.demo, seen[1]!.demo, 'the retry went to the other endpoint')
  const gap = seen[1]!.at - seen[0]!.at
  assert.ok(gap >= 550, `the retry waited ${Math.round(gap)} ms, Retry-After asked 1000 capped at 600`)
  assert.ok(gap < 950, `the retry waited ${Math.round(gap)} ms: Retry-After is capped at backoff.max (600 ms)`)
  // The second answer is the upstream's own 503, passed through.
  assert.equal(res.status, 503)
  assert.equal(res.headers['x-longhaul-error'], undefined)
  assert.equal(res.access.attempts, 2)
  assert.equal(await retries('status', 'status_503'), 1)
})

test('retries stop at the budget: a burst of failures retries at most max(3, 20% of active requests)', async () => {
  const N = 30
  const ids = new Set(Array.from({ length: N }, (_, i) => `budget-${i}-${randomUUID()}`))
  const calls = upstreamCalls(ids)
  const before = await retries('budget', 'status_503')
  let answers: Answer[]
  try {
    // All 30 are in flight when their 503s come back together (400 ms later): the budget is
    // floor(20% × 30) = 6 retries in flight; the retries themselves take 400 ms, so they are all
    // still in flight (or waiting out their backoff) when the rest of the burst is decided.
    answers = await Promise.all([...ids].map((id) => send('/budget/headers', { headers: { 'x-request-id': id, 'x-demo-status': '503', 'x-demo-delay-ms': '400' } })))
  } finally {
    calls.stop()
  }
  for (const a of answers) assert.equal(a.status, 503)
  const retriedAccess = answers.reduce((n, a) => n + (a.access.attempts as number) - 1, 0)
  const retriedUpstream = [...calls.byId.values()].reduce((n, c) => n + c.length - 1, 0)
  const retriedMetric = await retries('budget', 'status_503') - before
  assert.equal(retriedAccess, retriedMetric, 'attempts in the access lines and the retries metric agree')
  assert.equal(retriedUpstream, retriedMetric, 'and the upstreams saw as many second tries')
  assert.ok(retriedMetric >= 3, `the budget allows at least 3 retries in flight; ${retriedMetric} happened`)
  assert.ok(retriedMetric <= Math.max(3, Math.floor(0.2 * N)), `${retriedMetric} retries for a burst of ${N} failures: over the 20% budget`)
})

test('no retry once response bytes went downstream: the stream is cut, one attempt', async () => {
  const id = `stream-reset-${randomUUID()}`
  const calls = upstreamCalls(id)
  let res
  try {
    res = await rawExchange(gw.url, `GET /stream/sse HTTP/1.1\r\nHost: x\r\nx-request-id: ${id}\r\nx-demo-chunks: 10\r\nx-demo-interval-ms: 20\r\nx-demo-reset-after: 3\r\nConnection: close\r\n\r\n`)
  } finally {
    calls.stop()
  }
  assert.equal(res.status, 200)
  assert.equal(res.complete, false, 'the response is cut, not ended cleanly')
  assert.match(res.body.toString(), /"i":3/)
  const line = await gw.accessLine(id)
  assertAccess(line, { outcome: 'upstream_reset', status: 200 })
  assert.equal(line.attempts, 1, JSON.stringify(line))
  assert.equal(calls.byId.get(id)?.length, 1)
  assert.equal(await metric(gw, 'longhaul_retries_total', { route: 'stream' }), 0)
})

test('a client that leaves during the backoff ends at once as client_aborted', async () => {
  const id = `backoff-abort-${randomUUID()}`
  const calls = upstreamCalls(id)
  const client = new RawClient(gw.url)
  // The upstream answers 503 with Retry-After: 5, so the retry waits exactly 5 s (the policy's
  // max is 10 s): once the retry is counted, the request is in that backoff, not mid-connect.
  await client.send(`GET /backoff/headers HTTP/1.1\r\nHost: x\r\nx-request-id: ${id}\r\nx-demo-status: 503\r\nx-demo-retry-after: 5\r\n\r\n`)
  await waitFor('the retry to be decided', async () => (await retries('backoff', 'status_503')) >= 1)
  const leftAt = performance.now()
  client.socket.destroy()
  const line = await gw.accessLine(id, 3000)
  const after = performance.now() - leftAt
  calls.stop()
  assertAccess(line, { outcome: 'client_aborted', status: 499 })
  assert.ok(after < 500, `the access line came ${Math.round(after)} ms after the client left`)
  assert.equal(line.attempts, 1, JSON.stringify(line))
  assert.equal(calls.byId.get(id)?.length, 1, 'the retry was never sent')
  assert.ok((line.durationMs as number) < 5000, JSON.stringify(line))
})

test('keep-alive race (FIN): a GET on a pooled connection the backend closes is retried once on a fresh one', async () => {
  const first = await send('/racefin/one')
  assert.equal(first.status, 200)
  assert.equal(first.access.attempts, 1)
  // The pool keeps the connection (the backend announced Keep-Alive: timeout=10); the backend
  // closes it the moment the next request arrives on it.
  const second = await send('/racefin/two')
  assert.equal(second.status, 200, second.body)
  assert.equal(second.body, 'ok')
  assertAccess(second.access, { outcome: 'ok', status: 200 })
  assert.equal(second.access.attempts, 2, JSON.stringify(second.access))
  assert.deepEqual(raceFin.dropped.map((r) => [r.path, r.connection]), [['/two', 1]], 'the second request went out on the first connection')
  assert.deepEqual(raceFin.answered.map((r) => [r.path, r.connection]), [['/one', 1], ['/two', 2]], 'its retry went out on a new connection')
  assert.equal(await retries('racefin', 'stale_connection'), 1)
  assert.equal(await metric(gw, 'longhaul_retries_total', { route: 'racefin', reason: 'reset_before_response' }), 0)
  // The endpoint proved to close idle connections sooner than it says: its pooled idle time drops.
  await gw.waitForLine((l) => l.msg === 'upstream warning' && l.endpoint === raceFin.url)
})

test('keep-alive race (RST): a reset instead of a close is the same race, retried the same way', async () => {
  assert.equal((await send('/racerst/one')).status, 200)
  const second = await send('/racerst/two')
  assert.equal(second.status, 200, second.body)
  assert.equal(second.access.attempts, 2, JSON.stringify(second.access))
  assert.deepEqual(raceRst.dropped.map((r) => [r.path, r.connection]), [['/two', 1]])
  assert.deepEqual(raceRst.answered.map((r) => [r.path, r.connection]), [['/one', 1], ['/two', 2]])
  assert.equal(await retries('racerst', 'stale_connection'), 1)
})

test('keep-alive race: a POST is not retried by default (the stale-connection retry is for idempotent methods)', async () => {
  assert.equal((await send('/racepost/warm')).status, 200)
  const res = await send('/racepost/submit', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'once' })
  assertGatewayError(res, { outcome: 'upstream_reset', status: 502, proxyStatus: 'connection_terminated', route: 'racepost' })
  assert.equal(res.access.attempts, 1, JSON.stringify(res.access))
  assert.deepEqual(racePost.dropped.map((r) => [r.method, r.path, r.connection]), [['POST', '/submit', 1]])
  assert.deepEqual(racePost.answered.map((r) => r.path), ['/warm'], 'the POST was not sent again')
  assert.equal(await metric(gw, 'longhaul_retries_total', { route: 'racepost' }), 0)
})

test('keep-alive race: a route that allows non-idempotent retries after a reset retries the POST', async () => {
  assert.equal((await send('/racepostretried/warm')).status, 200)
  const res = await send('/racepostretried/submit', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'twice is fine' })
  assert.equal(res.status, 200, res.body)
  assert.equal(res.access.attempts, 2, JSON.stringify(res.access))
  assert.deepEqual(racePostRetried.dropped.map((r) => [r.method, r.path, r.connection]), [['POST', '/submit', 1]])
  assert.deepEqual(racePostRetried.answered.map((r) => [r.method, r.path, r.connection]), [['GET', '/warm', 1], ['POST', '/submit', 2]])
  assert.equal(await retries('racepostretried', 'reset_before_response'), 1)
  assert.equal(await retries('racepostretried', 'stale_connection'), 0)
})
