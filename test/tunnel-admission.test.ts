// WebSocket tunnels go through admission like any request (issue 10): an open tunnel holds one of
// its upstream's `limits.maxConcurrent` slots for its whole life, so a tunnel and an ordinary
// request share the limit, and either one beyond it is `overloaded`.
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
import { openTunnel as openWebSocket, type Refusal } from './helpers/ws.ts'

let demo: DemoUpstream
let gw: RunningGateway

before(async () => {
  ({ demo, gw } = await startOverDemo(() => `
routes:
  - { name: one, match: { pathPrefix: /one/ }, upstream: demo, rewrite: { stripPrefix: /one } }
`, { demoKeys: 'limits: { maxConcurrent: 1, maxQueued: 0 }' }))
})

after(() => stopOverDemo({ gw, demo }))

/** Opens a tunnel; resolves with the open socket, or with the gateway's refusal. */
function openTunnel (id: string): Promise<WebSocket | Refusal> {
  return openWebSocket(`ws://${gw.addresses[0]!}/one/ws`, { 'x-request-id': id })
}

async function get (id: string, headers: Record<string, string> = {}): Promise<Refusal> {
  const res = await request(`${gw.url}/one/headers`, { headers: { ...headers, 'x-request-id': id } })
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
}

async function slotsFree (): Promise<void> {
  await waitFor('the upstream idle', async () => (await upstreamStatus(gw, 'demo')).endpoints.every((e) => e.inflight === 0))
}

test('an open tunnel holds the only slot: a request and a second tunnel are overloaded; once it closes, a request passes', async () => {
  const tunnelId = `tunnel-${randomUUID()}`
  const ws = await openTunnel(tunnelId)
  assert.ok(ws instanceof WebSocket, 'the first tunnel opens')
  // The tunnel works while it holds the slot.
  ws.send('ping')
  const echo = await new Promise<string>((resolve) => ws.once('message', (d) => resolve(String(d))))
  assert.equal(echo, 'ping')

  const requestId = `request-${randomUUID()}`
  const refused = await get(requestId)
  assertGatewayError(refused, { outcome: 'overloaded', status: 503, proxyStatus: 'connection_limit_reached', route: 'one', upstream: 'demo' })
  const refusedLine = await gw.accessLine(requestId)
  assertAccess(refusedLine, { outcome: 'overloaded', status: 503 })
  assert.equal(refusedLine.attempts, 0, 'never sent upstream')

  const secondId = `tunnel-${randomUUID()}`
  const second = await openTunnel(secondId)
  assert.ok(!(second instanceof WebSocket), 'a second tunnel beyond the limit does not open')
  assertGatewayError(second, { outcome: 'overloaded', status: 503, proxyStatus: 'connection_limit_reached', route: 'one', upstream: 'demo' })
  const secondLine = await gw.accessLine(secondId)
  assertAccess(secondLine, { outcome: 'overloaded', status: 503 })
  assert.equal(secondLine.upgrade, 'websocket')

  ws.close(1000)
  assertAccess(await gw.accessLine(tunnelId), { outcome: 'ok', status: 101 })
  const after = await get(`after-${randomUUID()}`)
  assert.equal(after.status, 200, after.body)
  await slotsFree()
})

test('a request in flight holds the only slot: a tunnel is overloaded until it ends', async () => {
  const heldId = `held-${randomUUID()}`
  const controller = new AbortController()
  const held = request(`${gw.url}/one/headers`, { headers: { 'x-request-id': heldId, 'x-demo-delay-ms': '30000' }, signal: controller.signal })
    .then(async (res) => { await res.body.dump() }, () => {})
  await waitFor('the held request upstream', async () => (await upstreamStatus(gw, 'demo')).endpoints.some((e) => e.inflight === 1))

  const tunnelId = `tunnel-${randomUUID()}`
  const refused = await openTunnel(tunnelId)
  assert.ok(!(refused instanceof WebSocket), 'the tunnel does not open while the request holds the slot')
  assertGatewayError(refused, { outcome: 'overloaded', status: 503, proxyStatus: 'connection_limit_reached', route: 'one', upstream: 'demo' })
  assertAccess(await gw.accessLine(tunnelId), { outcome: 'overloaded', status: 503 })

  controller.abort()
  await held
  assertAccess(await gw.accessLine(heldId), { outcome: 'client_aborted', status: 499 })
  const opened = await openTunnel(`tunnel-${randomUUID()}`)
  assert.ok(opened instanceof WebSocket, 'the slot is free again')
  opened.close(1000)
  await new Promise((resolve) => opened.once('close', resolve))
  await slotsFree()
})
