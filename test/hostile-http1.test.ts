// Hostile HTTP/1.1 input (issue: hostile input), with raw sockets: what the client, the upstream
// and the access log each see. A parser error belongs to the exchange in flight (one ending, one
// line, never a second response on the wire); an early answer closes its connection in bounded
// time; too many header fields, two Host fields and a foreign version are refused before any
// upstream sees them; the path is normalised before routing.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import { startGateway, prefixRoute, type RunningGateway, type LogLine } from './helpers/gateway.ts'
import { startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { RawClient, statusLines } from './helpers/raw-client.ts'
import { LATE_MS } from './helpers/faults.ts'

const BODY_IDLE_MS = 500
const LINGER_MS = 1200
const MAX_HEADER_COUNT = 50

/** An upstream that answers at once, before reading the request body, and ends when the body did. */
interface EagerUpstream {
  url: string
  /** Requests by x-request-id: whether the request body ended cleanly or the request was cut. */
  seen: Map<string, Promise<'complete' | 'aborted'>>
  close: () => Promise<void>
}

async function startEagerUpstream (): Promise<EagerUpstream> {
  const seen = new Map<string, Promise<'complete' | 'aborted'>>()
  const server = http.createServer((req, res) => {
    seen.set(String(req.headers['x-request-id']), new Promise((resolve) => {
      req.on('end', () => resolve('complete'))
      req.on('error', () => resolve('aborted'))
      req.on('close', () => resolve(req.complete ? 'complete' : 'aborted'))
    }))
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('started\n')
    req.resume()
    req.on('end', () => res.end('done\n'))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}

let demo: DemoUpstream
let eager: EagerUpstream
let gw: RunningGateway
/** Requests the demo upstream received, by x-request-id. */
const demoSaw = new Set<string>()

before(async () => {
  demo = await startDemoUpstream()
  demo.events.on('request', (r) => demoSaw.add(String(r.headers['x-request-id'])))
  eager = await startEagerUpstream()
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
downstream: { bodyIdleTimeout: ${BODY_IDLE_MS}ms, lingerTimeout: ${LINGER_MS}ms, maxHeaderCount: ${MAX_HEADER_COUNT} }
upstreams:
  demo: { endpoints: [${demo.url}] }
  eager: { endpoints: [${eager.url}] }
routes:
${prefixRoute('eager', '', 'eager')}
${prefixRoute('public', '')}
`)
})

after(async () => {
  await gw?.stop()
  await demo?.close()
  await eager?.close()
})

/**
 * The access lines written since `mark` (an index into gw.lines), once a marker request sent
 * afterwards was logged: a line the attack caused is in the log by then.
 */
async function accessLinesSince (mark: number): Promise<LogLine[]> {
  const marker = randomUUID()
  await (await request(`${gw.url}/public/headers`, { headers: { 'x-request-id': marker } })).body.text()
  await gw.accessLine(marker)
  return gw.lines.slice(mark).filter((l) => l.msg === 'access' && l.requestId !== marker)
}

function upload (path: string, requestId: string, head: string): string {
  return `POST ${path} HTTP/1.1\r\nhost: gw.test\r\nx-request-id: ${requestId}\r\n${head}\r\n`
}

test('an invalid chunk after the response started ends that exchange once: no 400 inside the 200, one bad_request line', async () => {
  const mark = gw.lines.length
  const id = randomUUID()
  const client = new RawClient(gw.url)
  await client.send(upload('/eager/stream', id, 'transfer-encoding: chunked\r\n') + '5\r\nhello\r\n')
  await client.waitFor(/started\n/)
  client.socket.write('zz\r\n')
  await client.closed
  assert.deepEqual(statusLines(client.text()), ['HTTP/1.1 200 OK'], client.text())
  assert.ok(!client.text().includes('\r\n0\r\n\r\n'), 'a cut response never ends with the last chunk')
  assert.equal(await eager.seen.get(id), 'aborted')
  const lines = await accessLinesSince(mark)
  assert.equal(lines.length, 1, JSON.stringify(lines))
  assert.equal(lines[0]!.requestId, id)
  assert.equal(lines[0]!.outcome, 'bad_request')
  assert.equal(lines[0]!.status, 200)
})

test('a client that half-closes mid-upload is client_aborted, once, and gets no second response', async () => {
  const mark = gw.lines.length
  const id = randomUUID()
  const client = new RawClient(gw.url)
  await client.send(upload('/eager/stream', id, 'content-length: 100000\r\n') + 'x'.repeat(10))
  await client.waitFor(/started\n/)
  client.socket.end()
  await client.closed
  assert.deepEqual(statusLines(client.text()), ['HTTP/1.1 200 OK'], client.text())
  assert.equal(await eager.seen.get(id), 'aborted')
  const lines = await accessLinesSince(mark)
  assert.equal(lines.length, 1, JSON.stringify(lines))
  assert.equal(lines[0]!.outcome, 'client_aborted')
  assert.equal(lines[0]!.status, 200)
})

test('an invalid chunk before the response started is one 400 bad_request for that request', async () => {
  const mark = gw.lines.length
  const id = randomUUID()
  const client = new RawClient(gw.url)
  // The demo reads the whole body before answering.
  await client.send(upload('/public/echo', id, 'transfer-encoding: chunked\r\n') + '5\r\nhello\r\nzz\r\n')
  await client.closed
  assert.deepEqual(statusLines(client.text()), ['HTTP/1.1 400 Bad Request'], client.text())
  assert.match(client.text(), new RegExp(`x-request-id: ${id}`))
  const lines = await accessLinesSince(mark)
  assert.equal(lines.length, 1, JSON.stringify(lines))
  assert.equal(lines[0]!.requestId, id)
  assert.equal(lines[0]!.outcome, 'bad_request')
  assert.equal(lines[0]!.status, 400)
})

test('an unparsable request after a finished one on the same connection gets its own 400 and line, not the first one\'s', async () => {
  const mark = gw.lines.length
  const id = randomUUID()
  const client = new RawClient(gw.url)
  await client.send(`GET /public/headers HTTP/1.1\r\nhost: gw.test\r\nx-request-id: ${id}\r\n\r\n`)
  assert.equal((await client.response()).status, 200)
  await gw.accessLine(id)
  client.socket.write('GET /public/headers HTTP/1.1\r\nbad header line\r\n\r\n')
  await client.closed
  assert.deepEqual(statusLines(client.text()), ['HTTP/1.1 200 OK', 'HTTP/1.1 400 Bad Request'], client.text())
  const lines = await accessLinesSince(mark)
  assert.deepEqual(lines.map((l) => [l.outcome, l.status]), [['ok', 200], ['bad_request', 400]], JSON.stringify(lines))
  assert.notEqual(lines[1]!.requestId, id)
})

test('an early answer closes the connection: a trickling body is read at most downstream.lingerTimeout', async () => {
  // A client that goes on sending after the gateway's FIN (half-open), as an uploader does.
  const client = new RawClient(gw.url, { allowHalfOpen: true })
  await client.send(upload('/nowhere', randomUUID(), 'content-length: 1000000\r\n') + 'x')
  await client.waitFor(/\r\n\r\n\{.*\}$/s)
  const answeredAt = performance.now()
  assert.match(client.text(), /^HTTP\/1\.1 404 /)
  assert.match(client.text(), /\r\nconnection: close\r\n/i)
  // One byte per 50 ms: never silent for bodyIdleTimeout, so only the total bound ends it. Once
  // the gateway closed, the next byte is answered with a reset.
  const trickle = setInterval(() => { if (!client.socket.destroyed) client.socket.write('x') }, 50)
  await client.closed
  clearInterval(trickle)
  const lingered = client.closedAt - answeredAt
  assert.ok(lingered >= LINGER_MS - 50 && lingered < LINGER_MS + LATE_MS, `closed ${Math.round(lingered)} ms after the answer (lingerTimeout ${LINGER_MS} ms)`)
  assert.equal(statusLines(client.text()).length, 1)
})

test('an early answer to an upload says Connection: close and half-closes after the whole answer', async () => {
  const client = new RawClient(gw.url, { allowHalfOpen: true })
  const ended = new Promise<void>((resolve) => client.socket.once('end', resolve))
  await client.send(upload('/public/headers', randomUUID(), 'content-length: 1000000\r\nx-longhaul-timeout-ms: soon\r\n') + 'x')
  await ended
  assert.match(client.text(), /^HTTP\/1\.1 400 /)
  assert.match(client.text(), /\r\nconnection: close\r\n/i)
  assert.match(client.text(), /x-longhaul-timeout-ms must be a non-negative integer/)
  client.socket.destroy()
})

test('more header fields than downstream.maxHeaderCount is a 431 bad_request that no upstream sees', async () => {
  const id = randomUUID()
  const fields = (n: number): Record<string, string> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-f${i}`, String(i)]))
  const res = await request(`${gw.url}/public/echo`, { method: 'POST', body: 'payload', headers: { 'x-request-id': id, ...fields(MAX_HEADER_COUNT) } })
  const body = await res.body.text()
  assert.equal(res.statusCode, 431, body)
  assert.equal(res.headers['x-longhaul-error'], 'bad_request')
  assert.match(body, /maxHeaderCount/)
  const line = await gw.accessLine(id)
  assert.equal(line.outcome, 'bad_request')
  assert.equal(line.status, 431)
  assert.ok(!demoSaw.has(id))
  // Within the limit (undici adds host, content-length and connection), the request goes through whole.
  const ok = await request(`${gw.url}/public/echo`, { method: 'POST', body: 'payload', headers: fields(MAX_HEADER_COUNT - 5) })
  assert.equal(ok.statusCode, 200)
  assert.equal(await ok.body.text(), 'payload')
})

test('two Host fields are a 400 bad_request (RFC 9112 §3.2), not an upstream_reset', async () => {
  const id = randomUUID()
  const client = new RawClient(gw.url)
  await client.send(`GET /public/headers HTTP/1.1\r\nhost: a.test\r\nhost: b.test\r\nx-request-id: ${id}\r\n\r\n`)
  await client.waitFor(/\r\n\r\n\{.*\}$/s)
  assert.match(client.text(), /^HTTP\/1\.1 400 /)
  assert.match(client.text(), /x-longhaul-error: bad_request/)
  assert.match(client.text(), /proxy-status: longhaul; error=http_request_error/)
  const line = await gw.accessLine(id)
  assert.equal(line.outcome, 'bad_request')
  assert.equal(line.attempts, 0)
  assert.ok(!demoSaw.has(id))
  client.socket.destroy()
})

test('Connection: host does not strip Host, which the README says passes unchanged', async () => {
  const client = new RawClient(gw.url)
  await client.send('GET /public/headers HTTP/1.1\r\nhost: kept.test\r\nconnection: host, close\r\n\r\n')
  await client.closed
  assert.match(client.text(), /^HTTP\/1\.1 200 /)
  const seen = JSON.parse(client.text().slice(client.text().indexOf('\r\n\r\n') + 4)) as { headers: Record<string, string> }
  assert.equal(seen.headers.host, 'kept.test')
})

test('an HTTP/2.0 request line on the HTTP/1.1 listener is a 505, never proxied', async () => {
  const id = randomUUID()
  const client = new RawClient(gw.url)
  await client.send(`GET /public/headers HTTP/2.0\r\nhost: gw.test\r\nx-request-id: ${id}\r\n\r\n`)
  await client.waitFor(/\r\n\r\n\{.*\}$/s)
  assert.match(client.text(), /^HTTP\/1\.1 505 /)
  const line = await gw.accessLine(id)
  assert.equal(line.outcome, 'bad_request')
  assert.equal(line.status, 505)
  assert.equal(line.attempts, 0)
  client.socket.destroy()
})

test('paths are normalised before routing, and the upstream gets the normalised path', async () => {
  // Each of these leaves /public/: no route matches /headers, so none reaches the upstream.
  for (const path of ['/public/../headers', '/public/%2e%2e/headers', '/public%2F..%2Fheaders', '/public/.%2E/headers', '/public\\..\\headers']) {
    const client = new RawClient(gw.url)
    await client.send(`GET ${path} HTTP/1.1\r\nhost: gw.test\r\nconnection: close\r\n\r\n`)
    await client.closed
    assert.match(client.text(), /^HTTP\/1\.1 404 /, path)
    assert.match(client.text(), /x-longhaul-error: no_route/, path)
  }
  // Inside the prefix: routed, forwarded normalised (then stripPrefix applies).
  const res = await request(`${gw.url}/public/x/..//headers?q=%2e%2e`)
  const seen = await res.body.json() as { url: string }
  assert.equal(res.statusCode, 200)
  assert.equal(seen.url, '/headers?q=%2e%2e')
  // A malformed percent-encoding cannot be normalised: 400.
  const bad = await request(`${gw.url}/public/%zz`)
  assert.equal(bad.statusCode, 400)
  assert.match(await bad.body.text(), /not followed by two hex digits/)
})
