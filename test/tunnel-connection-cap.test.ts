// A WebSocket tunnel holds an upstream connection for its whole life, so under
// maxConnectionsPerEndpoint it takes one of the endpoint's connection slots like a request does,
// and gives back exactly the one it took: a request beyond the cap waits for it in the open
// (queue depth) or ends `overloaded` after the queue timeout, never silently inside the pool.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import WebSocket from 'ws'
import type { RunningGateway } from './helpers/gateway.ts'
import type { DemoUpstream } from './helpers/upstreams.ts'
import { startOverDemo, stopOverDemo } from './helpers/over-demo.ts'
import { assertAccess, assertGatewayError } from './helpers/faults.ts'
import { upstreamStatus, waitFor } from './helpers/resilience.ts'

const QUEUE_TIMEOUT_MS = 600

let demo: DemoUpstream
let gw: RunningGateway

before(async () => {
  ({ demo, gw } = await startOverDemo(() => `
routes:
  - { name: one, match: { pathPrefix: /one/ }, upstream: demo, rewrite: { stripPrefix: /one } }
`, { demoKeys: `maxConnectionsPerEndpoint: 1, limits: { maxConcurrent: 1000, queueTimeout: ${QUEUE_TIMEOUT_MS}ms }` }))
})

after(() => stopOverDemo({ gw, demo }))

async function openTunnel (id: string): Promise<WebSocket> {
  const ws = new WebSocket(`ws://${gw.addresses[0]!}/one/ws`, { headers: { 'x-request-id': id } })
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  return ws
}

async function closeTunnel (ws: WebSocket, id: string): Promise<void> {
  ws.close(1000)
  assertAccess(await gw.accessLine(id), { outcome: 'ok', status: 101 })
}

async function get (id: string, delayMs = '0'): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, body: string }> {
  const res = await request(`${gw.url}/one/headers`, { headers: { 'x-request-id': id, 'x-demo-delay-ms': delayMs } })
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
}

/** The endpoint's in-flight count and its connection queue, as /status shows them. */
async function endpointState (): Promise<{ inflight: number, queued: number }> {
  const e = (await upstreamStatus(gw, 'demo')).endpoints[0]!
  return { inflight: e.inflight, queued: e.queued ?? -1 }
}

test('tunnels one after another give back only the slot they took: the count returns to 0, never below', async () => {
  for (let i = 0; i < 3; i++) {
    const id = `tunnel-${randomUUID()}`
    const ws = await openTunnel(id)
    assert.deepEqual(await endpointState(), { inflight: 1, queued: 0 }, 'an open tunnel holds the one connection slot')
    await closeTunnel(ws, id)
  }
  await waitFor('the endpoint idle', async () => (await endpointState()).inflight === 0)
  assert.deepEqual(await endpointState(), { inflight: 0, queued: 0 })
  // With the slot count right, two slow requests at once take turns on the one connection (the
  // second waits in the open), instead of both passing a cap the tunnels drove below zero.
  const answers = Promise.all([get(`a-${randomUUID()}`, '400'), get(`b-${randomUUID()}`, '400')])
  assert.deepEqual(await waitFor('one request in flight, one queued', async () => {
    const state = await endpointState()
    return state.inflight + state.queued === 2 && state
  }), { inflight: 1, queued: 1 })
  assert.deepEqual((await answers).map((a) => a.status), [200, 200])
  await waitFor('the endpoint idle', async () => (await endpointState()).inflight === 0)
  assert.deepEqual(await endpointState(), { inflight: 0, queued: 0 })
})

test('an open tunnel holds the only connection: a request waits in the open and is served once the tunnel closes', async () => {
  const tunnelId = `tunnel-${randomUUID()}`
  const ws = await openTunnel(tunnelId)
  const requestId = `waiting-${randomUUID()}`
  const waiting = get(requestId)
  await waitFor('the request queued for the connection', async () => (await endpointState()).queued === 1)
  assert.equal((await endpointState()).inflight, 1)
  await closeTunnel(ws, tunnelId)
  const answer = await waiting
  assert.equal(answer.status, 200, answer.body)
  assertAccess(await gw.accessLine(requestId), { outcome: 'ok', status: 200 })
  await waitFor('the endpoint idle', async () => (await endpointState()).inflight === 0)
  assert.deepEqual(await endpointState(), { inflight: 0, queued: 0 })
})

test('a request still waiting when the queue timeout passes is overloaded, and the tunnel keeps its slot', async () => {
  const tunnelId = `tunnel-${randomUUID()}`
  const ws = await openTunnel(tunnelId)
  const requestId = `refused-${randomUUID()}`
  const refused = await get(requestId)
  // Checks elapsedMs against the queue timeout, with the helpers' tolerance.
  assertGatewayError(refused, { outcome: 'overloaded', status: 503, proxyStatus: 'connection_limit_reached', limitMs: QUEUE_TIMEOUT_MS, route: 'one', upstream: 'demo' })
  const line = await gw.accessLine(requestId)
  assertAccess(line, { outcome: 'overloaded', status: 503, limitMs: QUEUE_TIMEOUT_MS })
  assert.equal(line.attempts, 0, 'never sent upstream')
  assert.deepEqual(await endpointState(), { inflight: 1, queued: 0 })
  await closeTunnel(ws, tunnelId)
  await waitFor('the endpoint idle', async () => (await endpointState()).inflight === 0)
})
