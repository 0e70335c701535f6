// Admission control end to end (DESIGN.md §3 `limits`, SCENARIOS.md 4): at most maxConcurrent
// requests in flight per upstream, at most maxQueued waiting for a slot, each for at most
// queueTimeout; beyond that `overloaded` (503 with Retry-After) at once. A queued request counts
// its wait against its deadline, and a client that leaves the queue frees its place.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import { startGateway, type RunningGateway, type LogLine } from './helpers/gateway.ts'
import { startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { assertAccess, assertGatewayError } from './helpers/faults.ts'
import { RawClient } from './helpers/raw-client.ts'
import { metric, upstreamStatus, waitFor } from './helpers/resilience.ts'

let demo: DemoUpstream
let gw: RunningGateway
/** Upstream requests seen by the demo, by x-request-id, with their arrival time and headers. */
const arrivals = new Map<string, { at: number, headers: Record<string, unknown> }>()

before(async () => {
  demo = await startDemoUpstream()
  demo.events.on('request', (e) => {
    const id = e.headers['x-request-id']
    if (typeof id === 'string') arrivals.set(id, { at: performance.now(), headers: e.headers })
  })
  // tight is the limit under test; roomy has the same slots and a long queueTimeout, for the
  // tests whose steps must not race the 500 ms queue limit on a loaded machine.
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams:
  tight: { endpoints: [${demo.url}], limits: { maxConcurrent: 2, maxQueued: 1, queueTimeout: 500ms } }
  roomy: { endpoints: [${demo.url}], limits: { maxConcurrent: 2, maxQueued: 1, queueTimeout: 10s } }
routes:
  - { name: tight, match: { pathPrefix: /tight/ }, upstream: tight, rewrite: { stripPrefix: /tight } }
  - { name: roomy, match: { pathPrefix: /roomy/ }, upstream: roomy, rewrite: { stripPrefix: /roomy } }
`)
})

after(async () => {
  await gw?.stop()
  await demo?.close()
})

interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: string, access: LogLine }

async function send (path: string, headers: Record<string, string> = {}): Promise<Answer> {
  const id = headers['x-request-id'] ?? randomUUID()
  const res = await request(`${gw.url}${path}`, { headers: { ...headers, 'x-request-id': id } })
  const body = await res.body.text()
  return { status: res.statusCode, headers: res.headers, body, access: await gw.accessLine(id) }
}


interface Held { id: string, release: () => Promise<number> }

/**
 * A long request (the upstream answers after 30 s) that holds a slot; resolves once the upstream
 * has it. release() ends it from the client side and resolves, with the time it did, once the
 * gateway logged it.
 */
async function hold (prefix: string): Promise<Held> {
  const id = `held-${randomUUID()}`
  const controller = new AbortController()
  const done = request(`${gw.url}${prefix}/headers`, { headers: { 'x-request-id': id, 'x-demo-delay-ms': '30000' }, signal: controller.signal })
    .then(async (res) => { await res.body.dump() })
    .catch(() => {})
  await waitFor(`the upstream to receive ${id}`, async () => arrivals.has(id))
  return {
    id,
    release: async () => {
      const at = performance.now()
      controller.abort()
      await done
      assertAccess(await gw.accessLine(id), { outcome: 'client_aborted', status: 499 })
      return at
    }
  }
}

const queued = async (upstream: string): Promise<number> => (await upstreamStatus(gw, upstream)).queued
const depth = (upstream: string): Promise<number> => metric(gw, 'longhaul_upstream_queue_depth', { upstream })

async function waitQueued (upstream: string, n: number): Promise<void> {
  await waitFor(`${n} queued on ${upstream}`, async () => (await queued(upstream)) === n)
}

/** Both slots free again, for the next test. */
async function settle (upstream: string): Promise<void> {
  await waitFor(`${upstream} idle`, async () => {
    const s = await upstreamStatus(gw, upstream)
    return s.queued === 0 && s.endpoints.every((e) => e.inflight === 0)
  })
}

test('two in flight: a third queues and is served when a slot frees; a fourth is refused at once', async () => {
  const h1 = await hold('/roomy')
  const h2 = await hold('/roomy')
  const thirdId = `third-${randomUUID()}`
  const third = send('/roomy/headers', { 'x-request-id': thirdId })
  await waitQueued('roomy', 1)
  assert.equal(await depth('roomy'), 1, 'longhaul_upstream_queue_depth shows the waiting request')
  assert.equal(arrivals.has(thirdId), false, 'a queued request is not sent upstream')

  const sentAt = performance.now()
  const fourth = await send('/roomy/headers')
  const took = performance.now() - sentAt
  assertGatewayError(fourth, { outcome: 'overloaded', status: 503, proxyStatus: 'connection_limit_reached', route: 'roomy', upstream: 'roomy' })
  assert.equal(fourth.headers['retry-after'], '1')
  assert.ok(took < 300, `refused at once, not after a wait (${Math.round(took)} ms)`)
  assertAccess(fourth.access, { outcome: 'overloaded', status: 503 })
  assert.equal(fourth.access.attempts, 0, 'never tried at an endpoint')
  assert.match(String(JSON.parse(fourth.body).error.message), /concurrency limit/)

  const freedAt = await h1.release()
  const served = await third
  assert.equal(served.status, 200, served.body)
  assertAccess(served.access, { outcome: 'ok', status: 200 })
  assert.ok(arrivals.get(thirdId)!.at >= freedAt, 'sent upstream only once a slot was free')
  assert.equal(await depth('roomy'), 0)
  await h2.release()
  await settle('roomy')
})

test('a queued request waits at most queueTimeout, then is overloaded (limitMs 500)', async () => {
  const h1 = await hold('/tight')
  const h2 = await hold('/tight')
  try {
    const id = `timeout-${randomUUID()}`
    const res = await send('/tight/headers', { 'x-request-id': id })
    assertGatewayError(res, { outcome: 'overloaded', status: 503, proxyStatus: 'connection_limit_reached', limitMs: 500, route: 'tight', upstream: 'tight' })
    assert.equal(res.headers['retry-after'], '1')
    assertAccess(res.access, { outcome: 'overloaded', status: 503, limitMs: 500 })
    assert.equal(res.access.attempts, 0)
    assert.equal(arrivals.has(id), false)
    assert.equal(await queued('tight'), 0)
    assert.equal(await depth('tight'), 0)
  } finally {
    await h1.release()
    await h2.release()
  }
  await settle('tight')
})

test('a queued client that leaves frees its place: the next one queues, and is served', async () => {
  const h1 = await hold('/roomy')
  const h2 = await hold('/roomy')
  try {
    const leaverId = `leaver-${randomUUID()}`
    const leaver = new RawClient(gw.url)
    await leaver.send(`GET /roomy/headers HTTP/1.1\r\nHost: x\r\nx-request-id: ${leaverId}\r\n\r\n`)
    await waitQueued('roomy', 1)
    assert.equal(await depth('roomy'), 1)
    leaver.socket.destroy()
    const left = await gw.accessLine(leaverId)
    assertAccess(left, { outcome: 'client_aborted', status: 499 })
    assert.equal(left.attempts, 0)
    assert.equal(await queued('roomy'), 0, 'its place is free')
    assert.equal(await depth('roomy'), 0)

    // The queue has room again: the next request waits instead of being refused.
    const nextId = `next-${randomUUID()}`
    const next = send('/roomy/headers', { 'x-request-id': nextId })
    await waitQueued('roomy', 1)
    assert.equal(await depth('roomy'), 1)
    await h1.release()
    const served = await next
    assert.equal(served.status, 200, served.body)
    assert.equal(arrivals.has(leaverId), false, 'the request whose client left never went upstream')
  } finally {
    await h1.release()
    await h2.release()
  }
  await settle('roomy')
})

test('time spent queued counts against the request\'s deadline', async () => {
  const h1 = await hold('/roomy')
  const h2 = await hold('/roomy')
  try {
    // A client budget shorter than the wait: the deadline ends it while queued, and the outcome
    // names the client's limit, not the queue.
    const res = await send('/roomy/headers', { 'x-longhaul-timeout-ms': '300' })
    assertGatewayError(res, { outcome: 'client_deadline_exceeded', status: 504, proxyStatus: 'http_response_timeout', limitMs: 300 })
    assert.equal(await queued('roomy'), 0, 'it left the queue')
    assert.equal(res.access.attempts, 0)

    // A request admitted after a wait sends upstream only the budget it has left.
    const id = `budget-${randomUUID()}`
    const sentAt = performance.now()
    const admitted = send('/roomy/headers', { 'x-request-id': id, 'x-longhaul-timeout-ms': '5000' })
    await waitQueued('roomy', 1)
    // The wait under test: it is what the forwarded budget must have lost.
    await new Promise((resolve) => setTimeout(resolve, 300))
    await h1.release()
    const served = await admitted
    assert.equal(served.status, 200)
    const waited = arrivals.get(id)!.at - sentAt
    const forwarded = Number(arrivals.get(id)!.headers['x-longhaul-timeout-ms'])
    assert.ok(waited >= 300, `${waited}`)
    assert.ok(forwarded <= 5000 - 300 && forwarded > 5000 - waited - 100, `forwarded ${forwarded} ms after a ${Math.round(waited)} ms wait`)
  } finally {
    await h1.release()
    await h2.release()
  }
  await settle('roomy')
})

test('without a queue limit reached, requests pass straight through', async () => {
  const answers = await Promise.all([send('/roomy/headers'), send('/roomy/headers')])
  for (const a of answers) assert.equal(a.status, 200)
  const tight = await Promise.all([send('/tight/headers'), send('/tight/headers')])
  for (const a of tight) assert.equal(a.status, 200)
  assert.equal(await depth('roomy'), 0)
  assert.equal(await depth('tight'), 0)
})
