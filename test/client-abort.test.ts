// Principle 7: a client that goes away aborts its upstream request at once, in every phase of the
// exchange (waiting for headers, mid-stream, mid-upload, on a stalled stream). The demo upstream
// runs in this process, so its request-end time and the moment the client left share one clock.
import { test, before, after, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { Client } from 'undici'
import type { LogLine, RunningGateway } from './helpers/gateway.ts'
import { arrivalOf, requestEndOf, type DemoUpstream, type DemoRequestEnd } from './helpers/upstreams.ts'
import { startOverDemo, stopOverDemo } from './helpers/over-demo.ts'
import { RawClient } from './helpers/raw-client.ts'

/** Client gone → upstream request ended: generous for loopback, far below any timeout of the gateway. */
const ABORT_WITHIN_MS = 100

let demo: DemoUpstream
let gw: RunningGateway

before(async () => {
  ({ demo, gw } = await startOverDemo(() => `
routes:
  - name: all
    match: { pathPrefix: / }
    upstream: demo
`))
})

after(() => stopOverDemo({ gw, demo }))

/** The client leaves: its connection is destroyed; returns when. */
function leave (conn: RawClient): number {
  const goneAt = performance.now()
  conn.socket.destroy()
  return goneAt
}

/**
 * The upstream's request ended, aborted, within ABORT_WITHIN_MS of the client's leaving, and the
 * access line says client_aborted with `status`. Returns both for the test's own checks.
 */
async function assertClientAborted (t: TestContext, request: { id: string, ended: Promise<DemoRequestEnd>, goneAt: number, status: number }): Promise<{ end: DemoRequestEnd, line: LogLine }> {
  const end = await request.ended
  assert.equal(end.aborted, true, `upstream request-end: completed=${end.completed} aborted=${end.aborted} fault=${end.fault}`)
  assert.equal(end.completed, false)
  const lag = end.endedAt - request.goneAt
  t.diagnostic(`upstream request ended ${lag.toFixed(1)} ms after the client left`)
  assert.ok(lag < ABORT_WITHIN_MS, `the upstream request ended ${lag.toFixed(1)} ms after the client left`)
  const line = await gw.accessLine(request.id)
  assert.equal(line.outcome, 'client_aborted')
  assert.equal(line.status, request.status)
  return { end, line }
}

test('while the upstream delays its headers: upstream aborted at once, logged 499 client_aborted', async (t) => {
  const id = randomUUID()
  const received = arrivalOf(demo, id)
  const ended = requestEndOf(demo, id, 10_000)
  const conn = new RawClient(gw.url)
  await conn.send(`GET /headers HTTP/1.1\r\nhost: x\r\nx-request-id: ${id}\r\nx-demo-delay-ms: 5000\r\n\r\n`)
  await received
  const goneAt = leave(conn)
  const { line } = await assertClientAborted(t, { id, ended, goneAt, status: 499 })
  assert.equal(conn.text(), '')
  assert.equal(line.firstByteMs, null)
})

test('mid-stream (chat stream, client aborts after the 3rd event): upstream aborted at once, logged 200 client_aborted', async (t) => {
  const id = randomUUID()
  const ended = requestEndOf(demo, id, 10_000)
  const client = new Client(gw.url)
  const controller = new AbortController()
  let goneAt = 0
  let events = 0
  try {
    const res = await client.request({
      path: '/v1/chat/completions',
      method: 'POST',
      headers: { 'x-request-id': id, 'content-type': 'application/json', 'x-demo-interval-ms': '50' },
      body: JSON.stringify({ model: 'longhaul-demo', stream: true, messages: [{ role: 'user', content: 'tell me a long story' }] }),
      signal: controller.signal
    })
    assert.equal(res.statusCode, 200)
    assert.match(String(res.headers['content-type']), /^text\/event-stream/)
    res.body.on('error', () => {}) // the abort errors the body; that is the point
    let text = ''
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      text += chunk.toString()
      events = text.split('\n\n').filter((e) => e.startsWith('data: {')).length
      if (events >= 3) {
        goneAt = performance.now()
        controller.abort()
        break
      }
    }
  } catch (err) {
    if (goneAt === 0) throw err
  } finally {
    await client.destroy()
  }
  assert.ok(events >= 3 && events < 40, `${events} events before the abort`)
  const { line } = await assertClientAborted(t, { id, ended, goneAt, status: 200 })
  assert.ok((line.bytesOut as number) > 0)
})

test('while uploading (chunked body, client leaves mid-body): upstream aborted at once, logged 499 client_aborted', async (t) => {
  const id = randomUUID()
  const received = arrivalOf(demo, id)
  const ended = requestEndOf(demo, id, 10_000)
  const conn = new RawClient(gw.url)
  const frame = (data: Buffer): Buffer => Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')])
  await conn.send([`POST /upload HTTP/1.1\r\nhost: x\r\nx-request-id: ${id}\r\ntransfer-encoding: chunked\r\ncontent-type: application/octet-stream\r\n\r\n`, frame(randomBytes(16 * 1024))])
  await received
  // Some more of the body, never its last chunk: the upload is in progress when the client leaves.
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => conn.socket.write(frame(randomBytes(16 * 1024)), () => resolve()))
  const goneAt = leave(conn)
  const { line } = await assertClientAborted(t, { id, ended, goneAt, status: 499 })
  assert.equal(conn.text(), '')
  assert.ok((line.bytesIn as number) > 0, `bytesIn ${String(line.bytesIn)}`)
})

test('a stalled stream the client abandons: upstream aborted at once, logged 200 client_aborted', async (t) => {
  const id = randomUUID()
  const ended = requestEndOf(demo, id, 10_000)
  const conn = new RawClient(gw.url)
  await conn.send(`GET /sse HTTP/1.1\r\nhost: x\r\nx-request-id: ${id}\r\nx-demo-interval-ms: 20\r\nx-demo-stall-after: 2\r\n\r\n`)
  const ticks = (text: string): number => text.match(/event: tick/g)?.length ?? 0
  await conn.until((received) => ticks(received.toString('latin1')) === 2)
  // The client's patience: it waits a while with nothing arriving (the stall), then gives up.
  const before = conn.text().length
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal(conn.text().length, before, 'the stalled stream sent more')
  const goneAt = leave(conn)
  const { end } = await assertClientAborted(t, { id, ended, goneAt, status: 200 })
  assert.equal(end.fault, 'stall')
  assert.match(conn.text(), /^HTTP\/1\.1 200 /)
})
