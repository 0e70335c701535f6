// Graceful shutdown end to end (DESIGN.md §9, SCENARIOS.md story 5): a real gateway process gets
// real signals while real streams run through it, and the test watches what a load balancer and
// its clients would see: readiness, new and reused connections, every byte of every stream, the
// cut of what outlives drain.timeout, and the exit code.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import http2 from 'node:http2'
import { Client, Pool, request } from 'undici'
import { startGateway, type RunningGateway } from './helpers/gateway.ts'
import { arrivalOf, startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { parseRawResponse, sseRecords, errorRecordData } from './helpers/faults.ts'
import { RawClient } from './helpers/raw-client.ts'

const running: RunningGateway[] = []
const demos: DemoUpstream[] = []
after(async () => {
  await Promise.all(running.map((g) => g.stop('SIGKILL')))
  await Promise.all(demos.map((d) => d.close()))
})

async function gatewayFor (drain: string, routes = '  - name: all\n    upstream: demo\n'): Promise<{ gw: RunningGateway, demo: DemoUpstream }> {
  const demo = await startDemoUpstream()
  demos.push(demo)
  const gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams: { demo: { endpoints: [${demo.url}] } }
routes:
${routes}
drain: ${drain}
`)
  running.push(gw)
  return { gw, demo }
}

/** The exact body the demo's /sse writes for `chunks` events. */
function sseBody (chunks: number): string {
  let text = ''
  for (let i = 1; i <= chunks; i++) text += `id: ${i}\nevent: tick\ndata: {"i":${i}}\n\n`
  return text
}

/** Resolves with the exit code, or rejects when the process is still running after `ms`. */
function exitWithin (gw: RunningGateway, ms: number): Promise<number | null> {
  return Promise.race([
    gw.exited,
    new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`the gateway did not exit within ${ms} ms; last lines: ${JSON.stringify(gw.lines.slice(-5))}`)), ms).unref())
  ])
}

/** GET over a connection of its own (agent: false): the body as text. */
function getOnNewConnection (url: string): Promise<{ status: number, headers: http.IncomingHttpHeaders, body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      res.on('error', reject)
    }).on('error', reject)
  })
}

test('SIGTERM with 200 streams in flight: readiness 503 at once, new requests served during drain.delay, every stream completes byte for byte, exit 0', async (t) => {
  const { gw } = await gatewayFor('{ delay: 1s, timeout: 20s }')
  const STREAMS = 200
  const CHUNKS = 50
  const expected = sseBody(CHUNKS)
  const pool = new Pool(gw.url, { connections: STREAMS + 20 })
  const admin = new Client(gw.adminUrl)
  try {
    const began = performance.now()
    let headersSeen = 0
    const streams = Array.from({ length: STREAMS }, async () => {
      const res = await pool.request({ path: `/sse?chunks=${CHUNKS}&interval-ms=100`, method: 'GET' })
      headersSeen++
      return { status: res.statusCode, body: await res.body.text() }
    })
    // Every stream is open (its headers arrived) and a second has passed.
    while (headersSeen < STREAMS) await new Promise((resolve) => setTimeout(resolve, 20))
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1000 - (performance.now() - began))))
    const ready = await admin.request({ path: '/readyz', method: 'GET' })
    assert.equal(ready.statusCode, 200)
    await ready.body.dump()

    const signalledAt = performance.now()
    gw.process.kill('SIGTERM')
    // Readiness turns 503 at once: poll over a kept-alive admin connection in a tight loop.
    let readyzMs = -1
    let polls = 0
    while (performance.now() - signalledAt < 2000) {
      const res = await admin.request({ path: '/readyz', method: 'GET' })
      const body = await res.body.json() as { state: string }
      polls++
      if (res.statusCode === 503) {
        readyzMs = performance.now() - signalledAt
        assert.equal(body.state, 'draining')
        break
      }
    }
    assert.ok(readyzMs >= 0 && readyzMs < 100, `/readyz turned 503 after ${readyzMs.toFixed(1)} ms (${polls} polls)`)
    t.diagnostic(`/readyz turned 503 ${readyzMs.toFixed(1)} ms after SIGTERM (${polls} polls)`)
    const draining = await admin.request({ path: '/metrics', method: 'GET' })
    assert.match(await draining.body.text(), /^longhaul_draining 1$/m)

    // Within drain.delay the gateway still serves new connections normally (load balancers are
    // still sending while their endpoint lists update).
    const fresh = await getOnNewConnection(`${gw.url}/sse?chunks=3&interval-ms=20`)
    assert.ok(performance.now() - signalledAt < 1000, 'the new request finished within drain.delay')
    assert.equal(fresh.status, 200)
    assert.equal(fresh.body, sseBody(3))

    // After drain.delay the listener is closed: a new connection is refused outright.
    await gw.waitForLine((l) => l.msg === 'drain: stopped accepting', 5000)
    const refused = await getOnNewConnection(`${gw.url}/sse?chunks=1`).then(() => null, (err: NodeJS.ErrnoException) => err.code)
    assert.equal(refused, 'ECONNREFUSED')

    const results = await Promise.all(streams)
    const failed = results.filter((r) => r.status !== 200)
    assert.equal(failed.length, 0, `non-2xx: ${JSON.stringify(failed.slice(0, 3))}`)
    const broken = results.filter((r) => r.body !== expected)
    assert.equal(broken.length, 0, `${broken.length} streams differ; the first ends with ${JSON.stringify(broken[0]?.body.slice(-120))}`)
    for (const r of results) assert.equal(sseRecords(r.body).at(-1)?.id, String(CHUNKS))

    // It exits by itself once the last stream is done, well before drain.timeout.
    const code = await exitWithin(gw, 15_000)
    assert.equal(code, 0)
    const finished = await gw.waitForLine((l) => l.msg === 'drain finished')
    assert.equal(finished.cut, 0)
    assert.equal((await gw.waitForLine((l) => l.msg === 'exit')).code, 0)
    const started = await gw.waitForLine((l) => l.msg === 'drain started')
    assert.equal(started.signal, 'SIGTERM')
    assert.equal(started.inflight, STREAMS)
    const access = gw.lines.filter((l) => l.msg === 'access')
    assert.equal(access.length, STREAMS + 1)
    assert.deepEqual(access.filter((l) => l.outcome !== 'ok' || l.status !== 200), [])
  } finally {
    await admin.close()
    await pool.destroy()
  }
})

test('requests still running at drain.timeout are cut as drain_timeout (a stream: SSE error record, no chunked terminator; a request awaiting headers: 503), exit 1', async (t) => {
  const { gw, demo } = await gatewayFor('{ delay: 0s, timeout: 1s }', `
  - name: endless
    upstream: demo
    timeouts: { request: none, firstByte: 5s }
`)
  const conn = new RawClient(gw.url)
  await conn.connected
  conn.socket.write('GET /sse?chunks=100000&interval-ms=100 HTTP/1.1\r\nHost: longhaul.test\r\nx-request-id: endless-1\r\n\r\n')
  await conn.until((received) => received.includes('event: tick'))
  // A second request still waiting for its response headers when drain.timeout runs out.
  const waitingArrived = arrivalOf(demo, 'waiting-1')
  const waiting = request(`${gw.url}/headers`, { headers: { 'x-demo-delay-ms': '4000', 'x-request-id': 'waiting-1' } })
    .then(async (res) => ({ status: res.statusCode, headers: res.headers, body: await res.body.text() }))
  await waitingArrived
  const signalledAt = performance.now()
  gw.process.kill('SIGTERM')
  const exited = exitWithin(gw, 5000).then((code) => ({ code, afterMs: performance.now() - signalledAt }))
  await conn.closed
  const res = parseRawResponse(conn.buffered)
  assert.equal(res.status, 200)
  assert.equal(res.chunked, true)
  assert.equal(res.complete, false, 'a cut stream must not end with the chunked terminator')
  const records = sseRecords(res.body.toString())
  assert.ok(records.length >= 5, `only ${records.length} records before the cut`)
  const last = records.at(-1)!
  assert.equal(last.event, 'error')
  const doc = errorRecordData(last)
  assert.equal(doc.code, 'drain_timeout')
  assert.equal(doc.limitMs, 1000)
  assert.equal(doc.route, 'endless')
  assert.equal(doc.requestId, 'endless-1')
  assert.ok(records.slice(0, -1).every((r) => r.event === 'tick'))

  const { code, afterMs } = await exited
  assert.equal(code, 1)
  assert.ok(afterMs < 2000, `exited ${afterMs.toFixed(0)} ms after SIGTERM (drain.timeout 1s + 1s)`)
  t.diagnostic(`exited ${afterMs.toFixed(0)} ms after SIGTERM`)
  const line = await gw.accessLine('endless-1')
  assert.equal(line.outcome, 'drain_timeout')
  assert.equal(line.status, 200)
  assert.equal(line.limitMs, 1000)

  // Without headers sent yet, the cut is the gateway's own 503 with the error contract.
  const cutBefore = await waiting
  assert.equal(cutBefore.status, 503)
  assert.equal(cutBefore.headers['x-longhaul-error'], 'drain_timeout')
  assert.equal((JSON.parse(cutBefore.body) as { error: { code: string, limitMs: number } }).error.code, 'drain_timeout')
  assert.equal((await gw.accessLine('waiting-1')).status, 503)
  assert.equal((await gw.waitForLine((l) => l.msg === 'drain finished')).cut, 2)
  assert.equal((await gw.waitForLine((l) => l.msg === 'exit')).code, 1)
})

test('an HTTP/2 client that never reads its drain_timeout 503 does not hold the shutdown: exit within drain.timeout + the 2 s bound, its stream reset', async (t) => {
  const demo = await startDemoUpstream()
  demos.push(demo)
  const gw = await startGateway(`
listen: [{ address: 127.0.0.1:0, protocol: h2c }]
admin: { address: 127.0.0.1:0 }
upstreams: { demo: { endpoints: [${demo.url}] } }
routes: [{ name: all, upstream: demo }]
drain: { delay: 0s, timeout: 1s }
`)
  running.push(gw)
  // A flow-control window of 0: the 503's head can go out (HEADERS are not flow-controlled), its
  // body never can, so the response never ends unless the gateway gives up on it.
  const session = http2.connect(`http://${gw.addresses[0]!}`, { settings: { initialWindowSize: 0 } })
  session.on('error', () => {})
  t.after(() => session.destroy())
  const arrived = arrivalOf(demo, 'unread-1')
  const stream = session.request({ ':path': '/headers', 'x-demo-delay-ms': '10000', 'x-request-id': 'unread-1' })
  stream.on('error', () => {})
  const head = new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', resolve))
  const streamClosed = new Promise<number>((resolve) => stream.once('close', () => resolve(stream.rstCode ?? -1)))
  await arrived
  const signalledAt = performance.now()
  gw.process.kill('SIGTERM')
  const code = await exitWithin(gw, 8000)
  const afterMs = performance.now() - signalledAt
  t.diagnostic(`exited ${afterMs.toFixed(0)} ms after SIGTERM`)
  assert.equal(code, 1)
  // drain.timeout 1 s + the 2 s bound; the rest is slack for a loaded machine (without the bound: never).
  assert.ok(afterMs >= 2900 && afterMs < 5000, `exited ${afterMs.toFixed(0)} ms after SIGTERM (drain.timeout 1s + 2s)`)
  const headers = await head
  assert.equal(headers[':status'], 503)
  assert.equal(headers['x-longhaul-error'], 'drain_timeout')
  assert.notEqual(await streamClosed, http2.constants.NGHTTP2_NO_ERROR, 'the unsent 503 body ends in a reset, never a clean end')
  assert.equal((await gw.accessLine('unread-1')).outcome, 'drain_timeout')
  assert.equal((await gw.waitForLine((l) => l.msg === 'drain finished')).cut, 1)
})

test('after drain.delay: idle keep-alive connections are closed, a request arriving on an open connection is refused 503 draining with connection: close', async () => {
  const { gw, demo } = await gatewayFor('{ delay: 500ms, timeout: 10s }')
  // Keeps the gateway draining well past the requests below.
  const long = request(`${gw.url}/sse?chunks=25&interval-ms=100`).then(async (res) => ({ status: res.statusCode, body: await res.body.text() }))

  // Two kept-alive connections, each with one request done before the signal.
  const idle = new RawClient(gw.url)
  const reused = new RawClient(gw.url)
  for (const conn of [idle, reused]) {
    await conn.connected
    conn.socket.write('GET /headers HTTP/1.1\r\nHost: longhaul.test\r\n\r\n')
    const first = await conn.response()
    assert.equal(first.status, 200)
    assert.notEqual(first.headers.connection, 'close')
  }

  // A request whose response comes only after the gateway stopped accepting: served, and its
  // connection closed after it.
  const pending = new RawClient(gw.url)
  await pending.connected
  const pendingArrived = arrivalOf(demo, 'pending-1')
  pending.socket.write('GET /headers HTTP/1.1\r\nHost: longhaul.test\r\nx-request-id: pending-1\r\nx-demo-delay-ms: 1200\r\n\r\n')
  await pendingArrived

  gw.process.kill('SIGTERM')
  await gw.waitForLine((l) => l.msg === 'drain started')
  // The next request starts arriving on `reused` during drain.delay, so that connection is not
  // idle when the gateway stops accepting; its head is complete only after that.
  reused.socket.write('GET /headers HTTP/1.1\r\n')
  await gw.waitForLine((l) => l.msg === 'drain: stopped accepting', 5000)
  reused.socket.write('Host: longhaul.test\r\nx-request-id: reused-after-delay\r\n\r\n')
  const refused = await reused.response()
  assert.equal(refused.status, 503)
  assert.equal(refused.headers['x-longhaul-error'], 'draining')
  assert.equal(refused.headers.connection, 'close')
  assert.equal((JSON.parse(refused.body) as { error: { code: string } }).error.code, 'draining')
  await reused.closed
  const line = await gw.accessLine('reused-after-delay')
  assert.equal(line.outcome, 'draining')
  assert.equal(line.status, 503)

  // The connection that was idle at that moment was closed by the gateway, without a response.
  await idle.closed
  assert.equal(idle.buffered.length, 0)

  const late = await pending.response()
  assert.equal(late.status, 200)
  assert.equal(late.headers.connection, 'close')
  await pending.closed

  const done = await long
  assert.equal(done.status, 200)
  assert.equal(done.body, sseBody(25))
  assert.equal(await exitWithin(gw, 10_000), 0)
})

test('a drain logs its progress every 5 s; a second SIGTERM during it exits 1 at once', async () => {
  const { gw } = await gatewayFor('{ delay: 0s, timeout: 30s }')
  const res = await request(`${gw.url}/sse?chunks=100000&interval-ms=100`)
  assert.equal(res.statusCode, 200)
  const body = res.body.text().then(() => 'ended', () => 'cut')
  gw.process.kill('SIGTERM')
  const stopped = await gw.waitForLine((l) => l.msg === 'drain: stopped accepting', 5000)
  assert.equal(stopped.inflight, 1)
  const progress = await gw.waitForLine((l) => l.msg === 'drain progress', 8000)
  assert.equal(progress.inflight, 1)
  assert.ok((progress.oldestInflightMs as number) >= 5000, JSON.stringify(progress))
  assert.ok((progress.leftMs as number) > 20_000 && (progress.leftMs as number) <= 25_000, JSON.stringify(progress))
  const status = await (await request(`${gw.adminUrl}/status`)).body.json() as { state: string, inflight: number }
  assert.equal(status.state, 'draining')
  assert.equal(status.inflight, 1)
  const secondAt = performance.now()
  gw.process.kill('SIGTERM')
  assert.equal(await exitWithin(gw, 5000), 1)
  const afterMs = performance.now() - secondAt
  assert.ok(afterMs < 1000, `exited ${afterMs.toFixed(0)} ms after the second SIGTERM`)
  assert.equal((await gw.waitForLine((l) => l.msg === 'exit')).code, 1)
  assert.equal(gw.lines.some((l) => l.msg === 'drain finished'), false)
  assert.equal(await body, 'cut')
})
