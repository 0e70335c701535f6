// The end of a response: the upstream has finished, the client has not taken the last bytes.
// Nothing is written after end() (an SSE heartbeat there used to crash the gateway on HTTP/1.1
// and reset the finished stream on HTTP/2), the upstream's clocks stop with the upstream, and
// sendTimeout bounds the flush: a client stalled at the very end is client_send_timeout, never
// blamed on the upstream, and never held forever.
//
// The stalled client is an HTTP/2 one that grants a flow-control window of 0 and never raises it:
// the response headers go out (HEADERS are not flow-controlled), no body byte ever can, so the
// whole (small) body is still unsent when the upstream ends. Deterministic, unlike a socket that
// stops reading, whose kernel buffers take megabytes first.
import { test, before, after, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import { randomUUID } from 'node:crypto'
import { startGateway, prefixRoute, type RunningGateway } from './helpers/gateway.ts'
import { startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { assertAccess, assertElapsed } from './helpers/faults.ts'
import { metric } from './helpers/resilience.ts'

const SEND_TIMEOUT_MS = 600
/** How late the cut may come on a loaded machine; without the bound it never comes at all. */
const LATE_MS = 1500

let demo: DemoUpstream
let gw: RunningGateway

before(async () => {
  demo = await startDemoUpstream()
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0, protocol: h2c }]
admin: { address: 127.0.0.1:0 }
downstream: { sendTimeout: ${SEND_TIMEOUT_MS}ms }
upstreams:
  demo: { endpoints: [${demo.url}] }
routes:
${prefixRoute('heartbeat', '    sse: { heartbeat: 100ms }')}
${prefixRoute('idle', '    timeouts: { streamIdle: 200ms }')}
${prefixRoute('unbounded', '    timeouts: { streamIdle: none, request: none, firstByte: 5s }')}
`)
})

after(async () => {
  await gw?.stop()
  await demo?.close()
})

/**
 * Three SSE events, all sent by the upstream at once, to a client with no flow-control window:
 * resolves with the access line and how the client's stream ended.
 */
async function stalledAtTheEnd (t: TestContext, route: string): Promise<{ line: Record<string, unknown>, status: unknown, received: number, rstCode: number }> {
  const session = http2.connect(`http://${gw.addresses[0]!}`, { settings: { initialWindowSize: 0 } })
  session.on('error', () => {})
  t.after(() => session.destroy())
  const requestId = randomUUID()
  const stream = session.request({ ':path': `/${route}/sse?chunks=3&interval-ms=0`, 'x-request-id': requestId })
  stream.on('error', () => {})
  let received = 0
  stream.on('data', (chunk: Buffer) => { received += chunk.length })
  const head = new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', resolve))
  const closed = new Promise<number>((resolve) => stream.once('close', () => resolve(stream.rstCode ?? -1)))
  const line = await gw.accessLine(requestId, SEND_TIMEOUT_MS + LATE_MS + 3000)
  return { line, status: (await head)[':status'], received, rstCode: await closed }
}

/** The stall is cut by sendTimeout, counted from the upstream's end (about the first byte here). */
function assertCutBySendTimeout (line: Record<string, unknown>, rstCode: number, received: number): void {
  assertAccess(line, { outcome: 'client_send_timeout', status: 200, limitMs: SEND_TIMEOUT_MS })
  assertElapsed((line.durationMs as number) - (line.firstByteMs as number), SEND_TIMEOUT_MS, 'the cut after the upstream\'s end', LATE_MS)
  assert.equal(received, 0, 'no body byte could reach the client')
  assert.notEqual(rstCode, http2.constants.NGHTTP2_NO_ERROR, 'the unsent rest ends in a reset, never a clean end')
}

test('an SSE heartbeat never writes after the end: the flush is cut by sendTimeout and the gateway serves on', async (t) => {
  const { line, status, received, rstCode } = await stalledAtTheEnd(t, 'heartbeat')
  assert.equal(status, 200)
  assertCutBySendTimeout(line, rstCode, received)
  assert.doesNotMatch(gw.stderr(), /ERR_STREAM_WRITE_AFTER_END/)
  assert.equal(gw.process.exitCode, null, 'the gateway exited')
  assert.equal(await metric(gw, 'longhaul_requests_total', { route: 'heartbeat', outcome: 'client_send_timeout', status: '200' }), 1)
})

test('streamIdle stops with the upstream: a stall at the end is client_send_timeout, not stream_idle_timeout', async (t) => {
  const { line, received, rstCode } = await stalledAtTheEnd(t, 'idle')
  assertCutBySendTimeout(line, rstCode, received)
  assert.equal(await metric(gw, 'longhaul_requests_total', { route: 'idle', outcome: 'stream_idle_timeout' }), 0)
})

test('with streamIdle and request unlimited, sendTimeout still bounds the flush', async (t) => {
  const { line, received, rstCode } = await stalledAtTheEnd(t, 'unbounded')
  assertCutBySendTimeout(line, rstCode, received)
})
