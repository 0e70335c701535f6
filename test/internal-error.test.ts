// A defect on the request path (the gateway's own code throws while sending a request or opening
// a tunnel) ends that request as internal_error, with a 500 and an `internal error` log line that
// has the stack; the process serves on. Before, the throw was an unhandled rejection (a request)
// or an uncaught exception (a tunnel), and Node ended the whole gateway with every stream on it.
// The defect is injected into the gateway process by test/helpers/defect.ts.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { prefixRoute, type RunningGateway } from './helpers/gateway.ts'
import type { DemoUpstream } from './helpers/upstreams.ts'
import { startOverDemo, stopOverDemo } from './helpers/over-demo.ts'
import { assertAccess, assertGatewayError } from './helpers/faults.ts'
import { metric } from './helpers/resilience.ts'
import { openTunnel, type Refusal } from './helpers/ws.ts'

const DEFECT = fileURLToPath(new URL('./helpers/defect.ts', import.meta.url))

let demo: DemoUpstream
let gw: RunningGateway

before(async () => {
  ({ demo, gw } = await startOverDemo(() => `routes:${prefixRoute('one', '')}`, { nodeArgs: ['--import', DEFECT] }))
})

after(() => stopOverDemo({ gw, demo }))

/** The gateway answers 500 internal_error, logs the error with its stack, and lives on. */
async function assertInternalError (answer: Refusal, requestId: string): Promise<void> {
  assertGatewayError(answer, { outcome: 'internal_error', status: 500, proxyStatus: 'proxy_internal_error', route: 'one', upstream: 'demo', requestId })
  assertAccess(await gw.accessLine(requestId), { outcome: 'internal_error', status: 500 })
  const logged = await gw.waitForLine((l) => l.msg === 'internal error' && l.requestId === requestId)
  assert.equal(logged.level, 50)
  assert.match(String((logged.err as { stack?: unknown }).stack), /TypeError: a defect on the request path/)
  assert.equal(gw.process.exitCode, null, 'the gateway exited')
  assert.equal(gw.process.signalCode, null, 'the gateway was killed')
  assert.equal((await request(`${gw.adminUrl}/healthz`)).statusCode, 200)
}

test('a request whose sending throws is a 500 internal_error, with or without a body to read first; the gateway serves on', async () => {
  // A GET is sent at once; a PUT's small body is read whole first (kept for a retry), so its
  // sending runs later, from a promise.
  for (const method of ['GET', 'PUT'] as const) {
    const requestId = `${method}-${randomUUID()}`
    const res = await request(`${gw.url}/one/echo`, { method, headers: { 'x-request-id': requestId }, body: method === 'PUT' ? 'a body' : null })
    await assertInternalError({ status: res.statusCode, headers: res.headers, body: await res.body.text() }, requestId)
  }
  assert.equal(await metric(gw, 'longhaul_requests_total', { route: 'one', outcome: 'internal_error', status: '500' }), 2)
})

test('a WebSocket handshake whose opening throws is a 500 internal_error; the gateway serves on', async () => {
  const requestId = `tunnel-${randomUUID()}`
  const answer = await openTunnel(`ws://${gw.addresses[0]!}/one/ws`, { 'x-request-id': requestId })
  assert.ok(!('terminate' in answer), 'the tunnel opened')
  await assertInternalError(answer, requestId)
})
