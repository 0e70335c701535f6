// upstreams.NAME.protocol: h2 — HTTP/2 to the upstream (h2c with prior knowledge for http://),
// with the same streaming, limits and cancellation as HTTP/1.1; and http1 stays HTTP/1.1.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { startGateway, type RunningGateway } from './helpers/gateway.ts'

interface Seen { version: string, path: string, closed: Promise<{ early: boolean }> }
const seen: Seen[] = []
let upstream: http2.Http2Server
let gw: RunningGateway

before(async () => {
  // An h2c-only server: an HTTP/1.1 request to it fails, so a 200 proves the gateway spoke HTTP/2.
  upstream = http2.createServer((req, res) => {
    // Resolves when the response stream closes: early when this server had not ended it (the gateway reset it).
    let ended = false
    const end = res.end.bind(res)
    res.end = ((...args: Parameters<typeof res.end>) => { ended = true; return end(...args) }) as typeof res.end
    const closed = new Promise<{ early: boolean }>((resolve) => res.on('close', () => resolve({ early: !ended })))
    seen.push({ version: req.httpVersion, path: req.url, closed })
    if (req.url.startsWith('/sse')) {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      let i = 0
      const stallAfter = req.url.includes('stall') ? 2 : Infinity
      const timer = setInterval(() => {
        if (i >= stallAfter) return
        res.write(`id: ${++i}\nevent: tick\ndata: {}\n\n`)
        if (i === 5) { clearInterval(timer); res.end() }
      }, 20)
      res.on('close', () => clearInterval(timer))
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ version: req.httpVersion }))
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  const port = (upstream.address() as AddressInfo).port
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams:
  h2: { endpoints: [http://127.0.0.1:${port}], protocol: h2 }
  plain: { endpoints: [http://127.0.0.1:${port}] }
routes:
  - name: plain
    match: { pathPrefix: /plain/ }
    upstream: plain
    rewrite: { stripPrefix: /plain }
  - name: h2
    upstream: h2
    timeouts: { streamIdle: 300ms }
`)
})

after(async () => {
  await gw.stop()
  await new Promise<void>((resolve) => upstream.close(() => resolve()))
})

test('protocol: h2 speaks HTTP/2 to the upstream (h2c), and the answer streams back event by event', async () => {
  const res = await request(`${gw.url}/json`)
  assert.equal(res.statusCode, 200)
  assert.deepEqual(await res.body.json(), { version: '2.0' })
  const sse = await request(`${gw.url}/sse`)
  assert.equal(sse.statusCode, 200)
  assert.equal((await sse.body.text()).match(/event: tick/g)?.length, 5)
  const line = await gw.accessLine(sse.headers['x-request-id'] as string)
  assert.equal(line.outcome, 'ok')
})

test('over HTTP/2 upstream, a silent stream is still cut by streamIdle, and the upstream stream is closed', async () => {
  const res = await request(`${gw.url}/sse/stall`)
  // The cut is a reset, never a clean end: read what arrived until the body errors.
  let text = ''
  let cleanEnd = true
  try {
    for await (const chunk of res.body) text += String(chunk)
  } catch {
    cleanEnd = false
  }
  assert.equal(cleanEnd, false)
  const line = await gw.accessLine(res.headers['x-request-id'] as string)
  assert.equal(line.outcome, 'stream_idle_timeout')
  assert.equal(line.limitMs, 300)
  assert.match(text, /event: error\ndata: \{"type":"error","error":\{"type":"stream_idle_timeout","code":"stream_idle_timeout"/)
  const entry = seen.find((s) => s.path === '/sse/stall')!
  assert.equal(entry.version, '2.0')
  // the upstream's stream was reset by the gateway, not left open
  // (how — RST_STREAM or closing the session — is undici's choice; that it stops is ours)
  assert.equal((await entry.closed).early, true)
})

test('without protocol: h2 the gateway speaks HTTP/1.1, which an h2c-only upstream cannot parse: upstream_reset, never a silent protocol switch', async () => {
  const res = await request(`${gw.url}/plain/json`)
  const body = await res.body.json() as { error: { code: string } }
  assert.equal(res.statusCode, 502)
  assert.match(body.error.code, /^upstream_(reset|protocol_error)$/)
})
