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
import WebSocket from 'ws'
import { startGateway, prefixRoute, type RunningGateway } from './helpers/gateway.ts'
import { startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { assertAccess, assertGatewayError } from './helpers/faults.ts'
import { metric } from './helpers/resilience.ts'

const DEFECT = fileURLToPath(new URL('./helpers/defect.ts', import.meta.url))

let demo: DemoUpstream
let gw: RunningGateway

before(async () => {
  demo = await startDemoUpstream()
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams:
  demo: { endpoints: [${demo.url}] }
routes:
${prefixRoute('one', '')}
`, { nodeArgs: ['--import', DEFECT] })
})

after(async () => {
  await gw?.stop()
  await demo?.close()
})

interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: string }

/** The gateway answers 500 internal_error, logs the error with its stack once, and lives on. */
async function assertInternalError (answer: Answer, requestId: string): Promise<void> {
  assertGatewayError(answer, { outcome: 'internal_error', status: 500, proxyStatus: 'proxy_internal_error', route: 'one', upstream: 'demo', requestId })
  assertAccess(await gw.accessLine(requestId), { outcome: 'internal_error', status: 500 })
  const logged = await gw.waitForLine((l) => l.msg === 'internal error' && l.requestId === requestId)
  assert.equal(logged.level, 50)
  assert.match(String((logged.err as { stack?: unknown }).stack), /TypeError: a defect on the request path/)
  assert.equal(gw.process.exitCode, null, 'the gateway exited')
  assert.equal(gw.process.signalCode, null, 'the gateway was killed')
  assert.equal((await request(`${gw.adminUrl}/healthz`)).statusCode, 200)
}

test('a request whose sending throws is a 500 internal_error; the gateway serves on', async () => {
  const requestId = `request-${randomUUID()}`
  const res = await request(`${gw.url}/one/headers`, { headers: { 'x-request-id': requestId } })
  await assertInternalError({ status: res.statusCode, headers: res.headers, body: await res.body.text() }, requestId)
  assert.equal(await metric(gw, 'longhaul_requests_total', { route: 'one', outcome: 'internal_error', status: '500' }), 1)
})

test('a WebSocket handshake whose opening throws is a 500 internal_error; the gateway serves on', async () => {
  const requestId = `tunnel-${randomUUID()}`
  const answer = await new Promise<Answer>((resolve, reject) => {
    const ws = new WebSocket(`ws://${gw.addresses[0]!}/one/ws`, { headers: { 'x-request-id': requestId } })
    ws.once('open', () => reject(new Error('the tunnel opened')))
    ws.once('unexpected-response', (_req, res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    ws.once('error', reject)
  })
  await assertInternalError(answer, requestId)
})
