// The time limits end to end (DESIGN.md §3-5, §11; SCENARIOS.md 1-3): each one provoked through
// the real gateway against the demo upstream, and checked in all the places it is reported: the
// status or the shape of the cut, x-longhaul-error, Proxy-Status, the JSON body with limitMs and
// elapsedMs, the access line, and the upstream request that must have been aborted.
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import { startGateway, type RunningGateway, prefixRoute } from './helpers/gateway.ts'
import { requestEndOf, startBlackhole, startDemoUpstream, type Blackhole, type DemoUpstream } from './helpers/upstreams.ts'
import { assertAccess, assertElapsed, assertGatewayError, holdingClient, rawExchange, sseRecords, LATE_MS, errorRecordData } from './helpers/faults.ts'

let demo: DemoUpstream
let blackhole: Blackhole
let gw: RunningGateway

// Limits of a few hundred ms; every route strips its own prefix to reach the demo's endpoints.
// sendTimeout is long here (the backpressure test holds a response back for 1.5 s);
// client_send_timeout itself is tested in outcomes.test.ts with a short one.
before(async () => {
  demo = await startDemoUpstream()
  blackhole = await startBlackhole()
  const route = prefixRoute
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
downstream:
  headersTimeout: 300ms
  bodyIdleTimeout: 300ms
  sendTimeout: 5s
upstreams:
  demo: { endpoints: [${demo.url}] }
  blackhole: { endpoints: [${blackhole.url}], connectTimeout: 300ms }
routes:
${route('first-byte', '    timeouts: { firstByte: 300ms }')}
${route('idle', '    timeouts: { streamIdle: 300ms }')}
${route('idle-plain', '    timeouts: { streamIdle: 300ms }\n    sse: { errorEvent: false }')}
${route('total', '    timeouts: { request: 500ms }')}
${route('client', '    timeouts: { firstByte: 2s }')}
${route('extend', '    timeouts: { request: 300ms, maxClientTimeout: 2s }')}
${route('connect', '', 'blackhole')}
${route('body', '')}
${route('healthy', '    timeouts: { request: none, firstByte: 5s, streamIdle: 2s }')}
${route('backpressure', '    timeouts: { streamIdle: 500ms }')}
`)
})

after(async () => {
  await gw?.stop()
  await demo?.close()
  blackhole?.close()
})

interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: string }

async function get (path: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await request(`${gw.url}${path}`, { headers })
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
}

function newId (name: string): string {
  return `${name}-${randomUUID()}`
}

/** A GET through a raw socket, closed by the gateway when the response ends (or is cut). */
function rawGet (path: string, requestId: string): ReturnType<typeof rawExchange> {
  return rawExchange(gw.url, `GET ${path} HTTP/1.1\r\nHost: gateway.test\r\nx-request-id: ${requestId}\r\nConnection: close\r\n\r\n`)
}

function tickEvents (count: number): string {
  let text = ''
  for (let i = 1; i <= count; i++) text += `id: ${i}\nevent: tick\ndata: {"i":${i}}\n\n`
  return text
}

// The 30 s healthy stream runs beside the fault tests (which run one at a time), so the file
// takes about as long as that stream.
describe('timeouts', { concurrency: true }, () => {
  test('a healthy long stream is never cut: 60 events over 30 s arrive byte for byte, outcome ok', async () => {
    const id = newId('healthy')
    const path = '/sse?chunks=60&interval-ms=500'
    const ended = requestEndOf(demo, id, 60_000)
    const startedAt = performance.now()
    const [through, direct] = await Promise.all([
      request(`${gw.url}/healthy${path}`, { headers: { 'x-request-id': id } }).then(async (res) => ({ status: res.statusCode, text: await res.body.text() })),
      request(`${demo.url}${path}`).then(async (res) => res.body.text())
    ])
    const tookMs = performance.now() - startedAt
    assert.equal(through.status, 200)
    // a clean end (body.text() resolved, so the chunked terminator arrived) with every byte
    assert.equal(through.text, direct)
    assert.equal(through.text, tickEvents(60))
    assert.ok(tookMs >= 29_000, `the stream took ${tookMs} ms: it was not a long one`)
    const line = await gw.accessLine(id)
    assertAccess(line, { outcome: 'ok', status: 200 })
    assert.equal(line.bytesOut, Buffer.byteLength(tickEvents(60)))
    assert.equal((await ended).completed, true)
  })

  describe('one limit at a time', { concurrency: 1 }, () => {
    test('first_byte_timeout: no response headers within firstByte → 504, upstream aborted', async () => {
      const id = newId('first-byte')
      const ended = requestEndOf(demo, id)
      const res = await get('/first-byte/headers', { 'x-request-id': id, 'x-demo-delay-ms': '2000' })
      const doc = assertGatewayError(res, { outcome: 'first_byte_timeout', status: 504, proxyStatus: 'http_response_timeout', limitMs: 300, route: 'first-byte', upstream: 'demo', requestId: id })
      assert.match(String(doc.message), /firstByte \(300ms\)/)
      assertAccess(await gw.accessLine(id), { outcome: 'first_byte_timeout', status: 504, limitMs: 300 })
      const end = await ended
      assert.equal(end.aborted, true)
      // the upstream request was aborted when the limit fired, not when its 2 s answer was due
      assert.ok(end.endedAt - end.startedAt < 300 + LATE_MS, `upstream request lasted ${end.endedAt - end.startedAt} ms`)
    })

    test('stream_idle_timeout on SSE after headers: the events, then an error record, then a cut (no chunked terminator)', async () => {
      const id = newId('idle-sse')
      const ended = requestEndOf(demo, id)
      const res = await rawGet('/idle/sse?chunks=10&interval-ms=20&stall-after=2', id)
      assert.equal(res.status, 200)
      assert.equal(res.headers['content-type'], 'text/event-stream')
      assert.equal(res.chunked, true)
      assert.equal(res.complete, false, 'the response ended cleanly: a cut must not look like a complete answer')
      const text = res.body.toString()
      const records = sseRecords(text)
      assert.deepEqual(records.map((r) => r.event), ['tick', 'tick', 'error'], text)
      assert.ok(text.endsWith('\n\n'), 'nothing may follow the error record')
      const data = errorRecordData(records[2]!)
      assert.equal(data.code, 'stream_idle_timeout')
      assert.equal(data.limitMs, 300)
      assert.equal(data.route, 'idle')
      assert.equal(data.requestId, id)
      assert.match(String(data.message), /streamIdle \(300ms\)/)
      // elapsed counts from the request's arrival: two 20 ms events, then the 300 ms of silence
      assertElapsed(data.elapsedMs, 300, 'stream_idle_timeout', LATE_MS + 40)
      assertAccess(await gw.accessLine(id), { outcome: 'stream_idle_timeout', status: 200, limitMs: 300 })
      assert.equal((await ended).aborted, true)
    })

    test('stream_idle_timeout on a plain body: cut without a record (undici sees an error, never a clean end)', async () => {
      const id = newId('idle-bytes')
      const ended = requestEndOf(demo, id)
      const res = await request(`${gw.url}/idle/bytes/1000000?chunked=1&stall-after=2`, { headers: { 'x-request-id': id } })
      assert.equal(res.statusCode, 200)
      let received = 0
      await assert.rejects(async () => {
        for await (const chunk of res.body) received += (chunk as Buffer).length
      })
      // the two 64 KiB chunks before the stall, and not a byte of an error record
      assert.equal(received, 2 * 65536)
      assertAccess(await gw.accessLine(id), { outcome: 'stream_idle_timeout', status: 200, limitMs: 300 })
      assert.equal((await ended).aborted, true)
    })

    test('stream_idle_timeout on SSE with sse.errorEvent false: cut without a record', async () => {
      const id = newId('idle-plain')
      const ended = requestEndOf(demo, id)
      const res = await rawGet('/idle-plain/sse?chunks=10&interval-ms=20&stall-after=2', id)
      assert.equal(res.status, 200)
      assert.equal(res.complete, false)
      assert.equal(res.body.toString(), tickEvents(2))
      assertAccess(await gw.accessLine(id), { outcome: 'stream_idle_timeout', status: 200, limitMs: 300 })
      assert.equal((await ended).aborted, true)
    })

    test('request_timeout cuts a stream that is never idle once the whole exchange took `request`', async () => {
      const id = newId('total')
      const ended = requestEndOf(demo, id)
      const res = await rawGet('/total/sse?chunks=100&interval-ms=100', id)
      assert.equal(res.status, 200)
      assert.equal(res.complete, false)
      const records = sseRecords(res.body.toString())
      const last = records.at(-1)!
      assert.equal(last.event, 'error')
      const ticks = records.filter((r) => r.event === 'tick')
      assert.ok(ticks.length >= 2 && ticks.length <= 5, `${ticks.length} events in 500 ms at one per 100 ms`)
      assert.equal(records.length, ticks.length + 1)
      const data = errorRecordData(last)
      assert.equal(data.code, 'request_timeout')
      assert.equal(data.limitMs, 500)
      assertElapsed(data.elapsedMs, 500, 'request_timeout')
      // the client saw the cut about `request` after it asked, not at the end of a 10 s stream
      assert.ok(res.closedAt - res.sentAt < 500 + LATE_MS + 200, `closed after ${res.closedAt - res.sentAt} ms`)
      assertAccess(await gw.accessLine(id), { outcome: 'request_timeout', status: 200, limitMs: 500 })
      assert.equal((await ended).aborted, true)
    })

    test('client_deadline_exceeded: a client budget shorter than firstByte names the client\'s limit (§11)', async () => {
      const id = newId('client')
      const ended = requestEndOf(demo, id)
      const res = await get('/client/headers', { 'x-request-id': id, 'x-demo-delay-ms': '2000', 'x-longhaul-timeout-ms': '300' })
      const doc = assertGatewayError(res, { outcome: 'client_deadline_exceeded', status: 504, proxyStatus: 'http_response_timeout', limitMs: 300, route: 'client' })
      assert.match(String(doc.message), /x-longhaul-timeout-ms/)
      assertAccess(await gw.accessLine(id), { outcome: 'client_deadline_exceeded', status: 504, limitMs: 300 })
      assert.equal((await ended).aborted, true)
    })

    test('a client may extend `request` up to maxClientTimeout, and no further', async () => {
      // without a budget of its own, the route's 300 ms binds
      const short = newId('extend-none')
      const shortEnded = requestEndOf(demo, short)
      const cut = await get('/extend/headers', { 'x-request-id': short, 'x-demo-delay-ms': '600' })
      assertGatewayError(cut, { outcome: 'request_timeout', status: 504, proxyStatus: 'http_response_timeout', limitMs: 300 })
      assertAccess(await gw.accessLine(short), { outcome: 'request_timeout', status: 504, limitMs: 300 })
      assert.equal((await shortEnded).aborted, true)

      // 800 ms asked, within the 2 s cap: the 600 ms answer arrives
      const long = newId('extend-800')
      const ok = await get('/extend/headers', { 'x-request-id': long, 'x-demo-delay-ms': '600', 'x-longhaul-timeout-ms': '800' })
      assert.equal(ok.status, 200, ok.body)
      const seen = (JSON.parse(ok.body) as { headers: Record<string, string> }).headers
      const budget = Number(seen['x-longhaul-timeout-ms'])
      assert.ok(budget > 0 && budget <= 800, `budget sent upstream: ${budget}`)
      const line = await gw.accessLine(long)
      assertAccess(line, { outcome: 'ok', status: 200 })
      assert.ok((line.durationMs as number) >= 600)

      // 5 s asked, over the cap: the cap binds
      const capped = await get('/extend/headers', { 'x-longhaul-timeout-ms': '5000' })
      const cappedBudget = Number((JSON.parse(capped.body) as { headers: Record<string, string> }).headers['x-longhaul-timeout-ms'])
      assert.ok(cappedBudget > 1000 && cappedBudget <= 2000, `budget sent upstream: ${cappedBudget}`)
    })

    test('x-longhaul-timeout-ms goes upstream as the budget left, and not at all when unlimited', async () => {
      const res = await get('/client/headers', { 'x-longhaul-timeout-ms': '1500' })
      assert.equal(res.status, 200)
      const budget = Number((JSON.parse(res.body) as { headers: Record<string, string> }).headers['x-longhaul-timeout-ms'])
      assert.ok(budget > 1000 && budget <= 1500, `budget sent upstream: ${budget}`)

      const unlimited = await get('/healthy/headers')
      assert.equal(unlimited.status, 200)
      assert.equal((JSON.parse(unlimited.body) as { headers: Record<string, string> }).headers['x-longhaul-timeout-ms'], undefined)
    })

    test('an invalid x-longhaul-timeout-ms is bad_request (400), and the upstream is not contacted', async () => {
      for (const value of ['abc', '-1', '1.5', '10s', '']) {
        const id = newId('invalid-budget')
        const res = await get('/client/headers', { 'x-request-id': id, 'x-longhaul-timeout-ms': value })
        const doc = assertGatewayError(res, { outcome: 'bad_request', status: 400, proxyStatus: 'http_request_error', route: 'client' })
        assert.match(String(doc.message), /x-longhaul-timeout-ms/, `value '${value}'`)
        const line = await gw.accessLine(id)
        assertAccess(line, { outcome: 'bad_request', status: 400 })
        assert.equal(line.attempts, 0)
        assert.equal(line.endpoint, null)
      }
    })

    test('connect_timeout: an endpoint whose TCP connect hangs → 503 after connectTimeout', async () => {
      const id = newId('connect')
      const res = await get('/connect/health', { 'x-request-id': id })
      const line = await gw.accessLine(id)
      // every attempt waits its connectTimeout (DESIGN §4: on every attempt)
      const attempts = line.attempts as number
      assert.ok(attempts >= 1, JSON.stringify(line))
      const doc = assertGatewayError(res, { outcome: 'connect_timeout', status: 503, proxyStatus: 'connection_timeout', limitMs: 300, route: 'connect', upstream: 'blackhole', lateMs: 300 * (attempts - 1) + LATE_MS })
      assert.match(String(doc.message), /connectTimeout \(300ms\)/)
      assertAccess(line, { outcome: 'connect_timeout', status: 503, limitMs: 300 })
    })

    test('request_headers_timeout: a request head that stops arriving → 408 with the JSON error and connection: close', async () => {
      const res = await rawExchange(gw.url, 'GET /idle/headers HTTP/1.1\r\nHost: gateway.test\r\nx-partial: ')
      const body = res.body.toString()
      assert.equal(res.headers.connection, 'close')
      const doc = assertGatewayError({ status: res.status, headers: res.headers, body }, { outcome: 'request_headers_timeout', status: 408, proxyStatus: 'http_request_error', limitMs: 300, route: null })
      assert.match(String(doc.message), /downstream\.headersTimeout \(300ms\)/)
      assert.ok(res.closedAt - res.sentAt >= 300 - 5, `answered after ${res.closedAt - res.sentAt} ms`)
      assertAccess(await gw.accessLine(res.headers['x-request-id']!), { outcome: 'request_headers_timeout', status: 408, limitMs: 300 })
    })

    test('request_body_timeout: a streamed request body that goes silent → 408, and the upstream request is aborted', async () => {
      // Over retry.maxBufferedBody (64 KiB): the body streams to the upstream as it arrives.
      const id = newId('body')
      const ended = requestEndOf(demo, id)
      const res = await rawExchange(gw.url,
        `POST /body/upload HTTP/1.1\r\nHost: gateway.test\r\nx-request-id: ${id}\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n0123456789`)
      const body = res.body.toString()
      assert.equal(res.headers.connection, 'close')
      const doc = assertGatewayError({ status: res.status, headers: res.headers, body }, { outcome: 'request_body_timeout', status: 408, proxyStatus: 'http_request_error', limitMs: 300, route: 'body', requestId: id })
      assert.match(String(doc.message), /downstream\.bodyIdleTimeout \(300ms\)/)
      const line = await gw.accessLine(id)
      assertAccess(line, { outcome: 'request_body_timeout', status: 408, limitMs: 300 })
      assert.equal(line.bytesIn, 10)
      const end = await ended
      assert.equal(end.aborted, true)
      assert.equal(end.bytesIn, 10)
    })

    test('request_body_timeout: a small body kept for retries that goes silent → 408, and the upstream never sees a broken request', async () => {
      // Up to retry.maxBufferedBody the body is read whole before the first try.
      const id = newId('body-small')
      let contacted = false
      const onRequest = (e: { headers: Record<string, unknown> }): void => { if (e.headers['x-request-id'] === id) contacted = true }
      demo.events.on('request', onRequest)
      const res = await rawExchange(gw.url,
        `POST /body/upload HTTP/1.1\r\nHost: gateway.test\r\nx-request-id: ${id}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n0123456789`)
      demo.events.off('request', onRequest)
      assertGatewayError({ status: res.status, headers: res.headers, body: res.body.toString() }, { outcome: 'request_body_timeout', status: 408, proxyStatus: 'http_request_error', limitMs: 300, route: 'body', requestId: id })
      const line = await gw.accessLine(id)
      assertAccess(line, { outcome: 'request_body_timeout', status: 408, limitMs: 300 })
      assert.equal(line.attempts, 0)
      assert.equal(contacted, false)
    })

    test('backpressure is not silence: a client that stops reading for 1.5 s is not cut by a 500 ms streamIdle', async () => {
      const id = newId('backpressure')
      const size = 64 * 1024 * 1024
      const ended = requestEndOf(demo, id, 30_000)
      const client = holdingClient(gw.url, `GET /backpressure/bytes/${size} HTTP/1.1\r\nHost: gateway.test\r\nx-request-id: ${id}\r\nConnection: close\r\n\r\n`)
      const head = await client.head
      assert.equal(head.status, 200)
      // The scenario itself: the client reads nothing for 1.5 s, three times streamIdle.
      await new Promise((resolve) => setTimeout(resolve, 1500))
      const resumedAt = performance.now()
      assert.equal(client.socket.destroyed, false, 'the gateway cut the held-back response')
      client.socket.resume()
      await client.closed
      assert.equal(client.received(), size)
      const line = await gw.accessLine(id)
      assertAccess(line, { outcome: 'ok', status: 200 })
      assert.equal(line.bytesOut, size)
      const end = await ended
      assert.equal(end.completed, true)
      // the upstream could only finish once the client read on: it was held back, not buffered
      assert.ok(end.endedAt > resumedAt, 'the upstream finished writing while the client was not reading')
    })
  })
})
