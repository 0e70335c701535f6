// WebSocket tunnels end to end (issue 6), with a real client (the `ws` package) through the real
// gateway to the demo upstream's echo: messages both ways over ws:// and wss://, tunnelIdle and
// request bounding a tunnel, refusals and gateway errors before the 101, and the drain.
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import WebSocket from 'ws'
import { startGateway, type RunningGateway, prefixRoute } from './helpers/gateway.ts'
import { requestEndOf, startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { assertAccess, assertElapsed } from './helpers/faults.ts'
import { makeTestCertificate, type TestCertificate } from './helpers/tls.ts'

let demo: DemoUpstream
let cert: TestCertificate
let gw: RunningGateway
let wsBase: string
let wssBase: string

before(async () => {
  demo = await startDemoUpstream()
  cert = makeTestCertificate()
  const route = prefixRoute
  gw = await startGateway(`
listen:
  - address: 127.0.0.1:0
  - address: 127.0.0.1:0
    tls: { cert: ${cert.certPath}, key: ${cert.keyPath} }
admin: { address: 127.0.0.1:0 }
upstreams:
  demo: { endpoints: [${demo.url}] }
routes:
${route('chat', '    timeouts: { request: none, firstByte: 300ms, tunnelIdle: 5s }')}
${route('idle', '    timeouts: { request: none, firstByte: 5s, tunnelIdle: 500ms }')}
${route('life', '    timeouts: { request: 1s, tunnelIdle: 5s }')}
`)
  wsBase = `ws://${gw.addresses[0]!}`
  wssBase = `wss://${gw.addresses[1]!}`
})

after(async () => {
  await gw?.stop()
  await demo?.close()
  cert?.remove()
})

interface Opened {
  ws: WebSocket
  /** Response headers of the 101. */
  headers: Record<string, string | string[] | undefined>
  /** Resolves with the close code when the connection ends. */
  closed: Promise<{ code: number, at: number }>
  /** The next message. */
  next: () => Promise<WebSocket.RawData>
}

function open (url: string, options: WebSocket.ClientOptions = {}): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { ca: cert.cert, ...options })
    const queue: WebSocket.RawData[] = []
    const waiting: Array<(d: WebSocket.RawData) => void> = []
    ws.on('message', (data) => {
      const w = waiting.shift()
      if (w !== undefined) w(data)
      else queue.push(data)
    })
    const closed = new Promise<{ code: number, at: number }>((resolveClose) => ws.once('close', (code) => resolveClose({ code, at: performance.now() })))
    let headers: Opened['headers'] = {}
    ws.once('upgrade', (res) => { headers = res.headers })
    ws.once('open', () => resolve({
      ws,
      headers,
      closed,
      next: () => queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise((r) => waiting.push(r))
    }))
    ws.once('unexpected-response', (_req, res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => reject(Object.assign(new Error(`unexpected response ${res.statusCode}`), { status: res.statusCode, headers: res.headers, body })))
    })
    ws.once('error', reject)
  })
}

function rid (name: string): string {
  return `${name}-${randomUUID()}`
}

describe('WebSocket tunnels', { concurrency: true }, () => {
  for (const [scheme, base] of [['ws', () => wsBase], ['wss (HTTP/1.1 by ALPN on the TLS listener)', () => wssBase]] as const) {
    test(`echo over ${scheme}: text and a 200 KB binary message both ways, a clean close, one access line with bytes both ways`, async () => {
      const id = rid('echo')
      const ended = requestEndOf(demo, id)
      const t = await open(`${base()}/chat/ws`, { headers: { 'x-request-id': id } })
      assert.equal(t.headers['x-request-id'], id)
      t.ws.send('hello through the gateway')
      assert.equal((await t.next()).toString(), 'hello through the gateway')
      const big = Buffer.alloc(200_000, 7)
      t.ws.send(big)
      assert.deepEqual(await t.next(), big)
      t.ws.close(1000, 'done')
      assert.equal((await t.closed).code, 1000)
      const line = await gw.accessLine(id)
      assertAccess(line, { outcome: 'ok', status: 101 })
      assert.equal(line.upgrade, 'websocket')
      assert.equal(line.route, 'chat')
      assert.equal(line.protocol, 'HTTP/1.1')
      // frames carry a few bytes of their own on top of the payloads
      assert.ok((line.bytesIn as number) > 200_025 && (line.bytesIn as number) < 200_100, `bytesIn ${String(line.bytesIn)}`)
      assert.ok((line.bytesOut as number) > 200_025 && (line.bytesOut as number) < 200_100, `bytesOut ${String(line.bytesOut)}`)
      assert.equal(typeof line.firstByteMs, 'number')
      const end = await ended
      assert.equal(end.completed, true, 'the upstream got the close frame')
      assert.equal(end.headers['x-forwarded-proto'], scheme === 'ws' ? 'http' : 'https')
    })
  }

  test('tunnelIdle: a tunnel silent both ways is closed after the limit (tunnel_idle_timeout), the upstream side too', async () => {
    const id = rid('idle')
    const ended = requestEndOf(demo, id)
    const t = await open(`${wsBase}/idle/ws`, { headers: { 'x-request-id': id } })
    t.ws.send('one')
    await t.next()
    const lastByteAt = performance.now()
    const closed = await t.closed
    assert.equal(closed.code, 1006, 'closed without a close frame: the gateway does not forge one')
    const silentMs = closed.at - lastByteAt
    assert.ok(silentMs >= 450 && silentMs < 1200, `closed after ${Math.round(silentMs)} ms of silence`)
    const line = await gw.accessLine(id)
    assertAccess(line, { outcome: 'tunnel_idle_timeout', status: 101, limitMs: 500 })
    assert.equal((await ended).aborted, true)
  })

  test('tunnelIdle is re-armed by traffic either way: a tunnel that talks every 200 ms outlives it', async () => {
    const id = rid('busy')
    const t = await open(`${wsBase}/idle/ws`, { headers: { 'x-request-id': id } })
    for (let i = 0; i < 8; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200))
      t.ws.send(`tick ${i}`)
      assert.equal((await t.next()).toString(), `tick ${i}`)
    }
    assert.equal(t.ws.readyState, WebSocket.OPEN)
    t.ws.close(1000)
    await t.closed
    assertAccess(await gw.accessLine(id), { outcome: 'ok', status: 101 })
  })

  test('`request` bounds a tunnel\'s whole life, busy or not (request_timeout)', async () => {
    const id = rid('life')
    const t = await open(`${wsBase}/life/ws`, { headers: { 'x-request-id': id } })
    const timer = setInterval(() => { if (t.ws.readyState === WebSocket.OPEN) t.ws.send('busy') }, 100)
    try {
      const closed = await t.closed
      assert.equal(closed.code, 1006)
    } finally {
      clearInterval(timer)
    }
    const line = await gw.accessLine(id)
    assertAccess(line, { outcome: 'request_timeout', status: 101, limitMs: 1000 })
    assertElapsed(line.durationMs, 1000, 'request_timeout')
  })

  test('before the 101: an upstream refusal reaches the client as it is; gateway errors have their outcome', async () => {
    const refused = await open(`${wsBase}/chat/ws`, { headers: { 'x-demo-status': '403' } }).then(() => null, (err: { status: number, body: string }) => err)
    assert.equal(refused?.status, 403)
    assert.match(refused!.body, /status 403/)

    const late = await open(`${wsBase}/chat/ws`, { headers: { 'x-demo-delay-ms': '2000', 'x-request-id': rid('late') } }).then(() => null, (err: { status: number, headers: Record<string, string> }) => err)
    assert.equal(late?.status, 504)
    assert.equal(late!.headers['x-longhaul-error'], 'first_byte_timeout')

    const nowhere = await open(`${wsBase}/nowhere/ws`).then(() => null, (err: { status: number, headers: Record<string, string> }) => err)
    assert.equal(nowhere?.status, 404)
    assert.equal(nowhere!.headers['x-longhaul-error'], 'no_route')
  })
})

describe('WebSocket tunnels and the drain', () => {
  async function drainingGateway (timeout: string): Promise<{ g: RunningGateway, local: DemoUpstream }> {
    const local = await startDemoUpstream()
    const g = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams:
  demo: { endpoints: [${local.url}] }
routes:
  - name: all
    upstream: demo
    timeouts: { request: none, firstByte: 5s, tunnelIdle: 1m }
drain: { delay: 0s, timeout: ${timeout} }
`)
    return { g, local }
  }

  test('the drain waits for an open tunnel, which keeps working; drain.timeout then closes it (drain_timeout)', async () => {
    const { g, local } = await drainingGateway('1500ms')
    try {
      const id = rid('drain')
      const t = await open(`ws://${g.addresses[0]!}/ws`, { headers: { 'x-request-id': id } })
      const signalAt = performance.now()
      const exited = g.stop('SIGTERM', 10_000)
      await g.waitForLine((l) => l.msg === 'drain: stopped accepting')
      t.ws.send('still here')
      assert.equal((await t.next()).toString(), 'still here')
      // no new tunnel: the listener is closed
      await assert.rejects(open(`ws://${g.addresses[0]!}/ws`))
      const closed = await t.closed
      assert.ok(closed.at - signalAt >= 1400, `closed ${Math.round(closed.at - signalAt)} ms after SIGTERM`)
      assertAccess(await g.accessLine(id), { outcome: 'drain_timeout', status: 101, limitMs: 1500 })
      assert.equal(await exited, 1, 'a drain that had to cut exits 1')
    } finally {
      await g.stop()
      await local.close()
    }
  })

  test('a tunnel that closes during the drain lets the gateway exit at once, 0', async () => {
    const { g, local } = await drainingGateway('10s')
    try {
      const id = rid('drain-ok')
      const t = await open(`ws://${g.addresses[0]!}/ws`, { headers: { 'x-request-id': id } })
      const exited = g.stop('SIGTERM', 15_000)
      await g.waitForLine((l) => l.msg === 'drain: stopped accepting')
      await new Promise((resolve) => setTimeout(resolve, 300))
      const closingAt = performance.now()
      t.ws.close(1000)
      assert.equal(await exited, 0)
      assert.ok(performance.now() - closingAt < 3000)
      assertAccess(g.lines.find((l) => l.msg === 'access' && l.requestId === id)!, { outcome: 'ok', status: 101 })
    } finally {
      await g.stop()
      await local.close()
    }
  })
})
