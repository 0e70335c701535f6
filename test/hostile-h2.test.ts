// Hostile HTTP/2 input (issue: hostile input), with node:http2 sessions against an h2c listener:
// a rapid-reset flood spread over many connections is bounded gateway-wide (GOAWAY to the
// abusers, a metric, no upstream request for a stream reset before dispatch, a healthy client
// served as fast as when it is quiet); a `host` that disagrees with `:authority` is malformed; a
// stream past the session's concurrent stream limit is refused alone.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import http from 'node:http'
import { once } from 'node:events'
import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import { startGateway, prefixRoute, type RunningGateway } from './helpers/gateway.ts'
import { startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { h2Connect, h2Request } from './helpers/h2.ts'
import { FRAME, errorCode, headersFrame, rawH2Session, rstStreamFrame, type Frame } from './helpers/h2-frames.ts'

const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_REFUSED_STREAM } = http2.constants
/** downstream.maxConcurrentStreams here: small, so that its tests stay quick. */
const STREAM_LIMIT = 20

let demo: DemoUpstream
let gw: RunningGateway
let h2cUrl: string
/** Upstream requests by x-request-id prefix. */
const upstreamSaw: string[] = []
/** An upstream that answers nothing until `release`: the streams of a test stay open until then. */
let holding: http.Server
const held: Array<{ id: string, res: http.ServerResponse }> = []
function release (): void {
  for (const { id, res } of held.splice(0)) res.end(`${id}:${'x'.repeat(64)}`)
}

before(async () => {
  demo = await startDemoUpstream()
  demo.events.on('request', (r) => upstreamSaw.push(String(r.headers['x-request-id'])))
  holding = http.createServer((req, res) => {
    const id = String(req.headers['x-request-id'])
    upstreamSaw.push(id)
    held.push({ id, res })
    holding.emit('held')
  })
  holding.listen(0, '127.0.0.1')
  await once(holding, 'listening')
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0, protocol: h2c }]
admin: { address: 127.0.0.1:0 }
# A small budget, so that the flood spends it however slowly a loaded machine reads it.
downstream: { maxConcurrentStreams: ${STREAM_LIMIT}, resetFlood: { rate: 50, burst: 200, perConnection: 20 } }
upstreams:
  demo: { endpoints: [${demo.url}] }
  holding: { endpoints: [http://127.0.0.1:${(holding.address() as { port: number }).port}] }
routes:
${prefixRoute('held', '', 'holding')}
  - name: by-host
    match: { host: admin.test }
    upstream: demo
${prefixRoute('any', '')}
`)
  h2cUrl = `http://${gw.addresses[0]!}`
})

after(async () => {
  await gw?.stop()
  await demo?.close()
  holding?.closeAllConnections()
  holding?.close()
})

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** Sequential requests of a healthy client on its own session; the latency of each, in ms. */
async function healthyLatencies (session: http2.ClientHttp2Session, count: number): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < count; i++) {
    const started = performance.now()
    const answer = await h2Request(session, '/any/headers', { headers: { 'x-demo-delay-ms': '20' } })
    assert.equal(answer.status, 200)
    out.push(performance.now() - started)
  }
  return out
}

/**
 * One abuser: streams opened and at once reset (HEADERS then RST_STREAM CANCEL, in one write),
 * in bursts of 50 every 10 ms, until it has sent them all or its connection ends. Resolves with
 * the GOAWAY code it got.
 */
async function resetFlood (streams: number, tag: string): Promise<{ sent: number, goaway: number | null }> {
  const session = await rawH2Session(h2cUrl)
  let sent = 0
  while (sent < streams && !session.socket.destroyed) {
    const burst: Buffer[] = []
    for (let i = 0; i < 50 && sent < streams; i++, sent++) {
      const id = 2 * sent + 1
      burst.push(headersFrame(id, '/any/headers', { 'x-request-id': `${tag}-${sent}` }), rstStreamFrame(id, NGHTTP2_CANCEL))
    }
    session.socket.write(Buffer.concat(burst))
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  // A loaded machine may read the flood seconds after it was sent.
  const goaway = await session.waitFrame((f) => f.type === FRAME.GOAWAY, 10_000).then(errorCode, () => null)
  session.socket.destroy()
  return { sent, goaway }
}

async function metricValue (name: string): Promise<number> {
  const text = await (await request(`${gw.adminUrl}/metrics`)).body.text()
  const line = text.split('\n').find((l) => l.startsWith(name))
  return line === undefined ? 0 : Number(line.split(' ').pop())
}

test('a reset flood over 9 connections: GOAWAY to the abusers, no upstream request, a healthy client within 2x its quiet latency', async () => {
  const healthy = await h2Connect(h2cUrl)
  try {
    // Warm the gateway's pool to the upstream: a flood's requests then go out at once.
    await Promise.all(Array.from({ length: 50 }, () => h2Request(healthy, '/any/headers', { headers: { 'x-demo-delay-ms': '50' } })))
    const quiet = median(await healthyLatencies(healthy, 15))
    const goawaysBefore = await metricValue('longhaul_http2_flood_goaways_total')
    const tag = `flood-${randomUUID()}`
    const during = healthyLatencies(healthy, 15)
    const floods = await Promise.all(Array.from({ length: 9 }, (_, i) => resetFlood(900, `${tag}-${i}`)))
    const loaded = median(await during)

    const cut = floods.filter((f) => f.goaway === NGHTTP2_ENHANCE_YOUR_CALM)
    assert.ok(cut.length >= 1, `no flooding session got GOAWAY ENHANCE_YOUR_CALM: ${JSON.stringify(floods)}`)
    assert.ok(await metricValue('longhaul_http2_flood_goaways_total') >= goawaysBefore + cut.length)
    assert.equal(upstreamSaw.filter((id) => id.startsWith(tag)).length, 0, 'a stream reset before dispatch reached the upstream')
    assert.ok(loaded <= 2 * quiet, `healthy median ${loaded.toFixed(1)} ms during the flood, ${quiet.toFixed(1)} ms quiet`)
    // The healthy session was never cut.
    assert.equal(healthy.closed, false)
  } finally {
    healthy.destroy()
  }
})

test('a host field that differs from :authority is malformed: 400 bad_request, routed nowhere', async () => {
  const session = await h2Connect(h2cUrl)
  try {
    const id = randomUUID()
    const answer = await h2Request(session, '/any/headers', { headers: { ':authority': 'public.test', host: 'admin.test', 'x-request-id': id } })
    assert.equal(answer.status, 400, answer.body)
    assert.equal(answer.headers['x-longhaul-error'], 'bad_request')
    const line = await gw.accessLine(id)
    assert.equal(line.outcome, 'bad_request')
    assert.equal(line.route, null)
    assert.ok(!upstreamSaw.includes(id))
    // Routing uses :authority: the by-host route takes admin.test only when :authority says so.
    const byAuthority = await h2Request(session, '/headers', { headers: { ':authority': 'admin.test' } })
    assert.equal(byAuthority.status, 200)
  } finally {
    session.destroy()
  }
})

test('the stream past downstream.maxConcurrentStreams is refused alone: REFUSED_STREAM, never upstream, the others complete', async () => {
  const limit = STREAM_LIMIT
  const tag = `limit-${randomUUID()}`
  const idOf = (i: number): string => `${tag}-${i}`
  const metric = async (): Promise<number> => {
    const text = await (await request(`${gw.adminUrl}/metrics`)).body.text()
    const line = text.split('\n').find((l) => l.startsWith('longhaul_requests_total{') && l.includes('outcome="too_many_streams"'))
    return line === undefined ? 0 : Number(line.split(' ').pop())
  }
  const refusedBefore = await metric()
  // rawH2Session has acknowledged the gateway's SETTINGS: the client knows every limit it states.
  const session = await rawH2Session(h2cUrl)
  try {
    // limit + 1 streams in one write; the upstream holds every response, so all stay open.
    const frames: Buffer[] = []
    for (let i = 0; i < limit; i++) frames.push(headersFrame(2 * i + 1, '/held/x', { 'x-request-id': idOf(i) }))
    // The extra one expects 100-continue, which Node's compatibility layer would answer itself.
    frames.push(headersFrame(2 * limit + 1, '/held/x', { 'x-request-id': idOf(limit), expect: '100-continue' }, { body: true }))
    session.socket.write(Buffer.concat(frames))
    const extra = 2 * limit + 1
    const answer = await session.waitFrame((f) => f.type === FRAME.GOAWAY || (f.type === FRAME.RST_STREAM && f.streamId === extra), 10_000)
    assert.deepEqual([answer.type, errorCode(answer)], [FRAME.RST_STREAM, NGHTTP2_REFUSED_STREAM], 'the extra stream is refused, not the session')
    // Every other stream reached the upstream: answer them all.
    while (held.length < limit) await once(holding, 'held')
    release()

    const ended = (f: Frame): boolean => (f.type === FRAME.DATA || f.type === FRAME.HEADERS) && (f.flags & 0x1) !== 0
    const endedStreams = new Set<number>()
    for (const f of session.frames) if (ended(f)) endedStreams.add(f.streamId)
    while (endedStreams.size < limit) {
      const f = await session.waitFrame((f) => ended(f) && !endedStreams.has(f.streamId), 10_000)
      endedStreams.add(f.streamId)
    }
    for (let i = 0; i < limit; i++) {
      const id = 2 * i + 1
      const own = session.frames.filter((f) => f.streamId === id)
      // 0x88: HPACK's static entry 8, `:status: 200`, as nghttp2 encodes it.
      assert.equal(own.find((f) => f.type === FRAME.HEADERS)?.payload[0], 0x88, `stream ${id}: status 200`)
      const body = Buffer.concat(own.filter((f) => f.type === FRAME.DATA).map((f) => f.payload)).toString()
      assert.equal(body, `${idOf(i)}:${'x'.repeat(64)}`, `stream ${id}: the whole body`)
      assert.ok(!own.some((f) => f.type === FRAME.RST_STREAM), `stream ${id} was reset`)
    }
    assert.equal(session.frames.filter((f) => f.type === FRAME.GOAWAY).length, 0, 'no GOAWAY')
    assert.equal(session.frames.filter((f) => f.type === FRAME.RST_STREAM).length, 1)
    assert.ok(!upstreamSaw.includes(idOf(limit)), 'the refused stream reached the upstream')
    assert.equal(upstreamSaw.filter((id) => id.startsWith(tag)).length, limit)

    const refusedLine = await gw.accessLine(idOf(limit))
    assert.equal(refusedLine.outcome, 'too_many_streams')
    assert.equal(refusedLine.status, 503)
    assert.equal(refusedLine.route, null)
    assert.equal(refusedLine.protocol, 'HTTP/2.0')
    for (let i = 0; i < limit; i++) assert.equal((await gw.accessLine(idOf(i))).outcome, 'ok')
    assert.equal(gw.lines.filter((l) => l.msg === 'access' && String(l.requestId).startsWith(tag)).length, limit + 1, 'one access line per request')
    assert.equal(await metric(), refusedBefore + 1)
  } finally {
    release()
    session.socket.destroy()
  }
})

test('a client that keeps opening streams past the limit is a flood: GOAWAY ENHANCE_YOUR_CALM, no refused stream upstream', async () => {
  const limit = STREAM_LIMIT
  const tag = `refusals-${randomUUID()}`
  const goawaysBefore = await metricValue('longhaul_http2_flood_goaways_total')
  const session = await rawH2Session(h2cUrl)
  try {
    // The limit's worth of held streams, then far more refused ones than the test's budget (200).
    const extra = 400
    const frames: Buffer[] = []
    for (let i = 0; i < limit + extra; i++) frames.push(headersFrame(2 * i + 1, '/held/x', { 'x-request-id': `${tag}-${i}` }))
    session.socket.write(Buffer.concat(frames))
    const goaway = await session.waitFrame((f) => f.type === FRAME.GOAWAY, 10_000)
    assert.equal(errorCode(goaway), NGHTTP2_ENHANCE_YOUR_CALM)
    assert.ok(session.frames.some((f) => f.type === FRAME.RST_STREAM && errorCode(f) === NGHTTP2_REFUSED_STREAM))
    assert.equal(await metricValue('longhaul_http2_flood_goaways_total'), goawaysBefore + 1)
    const seen = new Set(upstreamSaw.filter((id) => id.startsWith(tag)).map((id) => Number(id.slice(tag.length + 1))))
    assert.ok(seen.size <= limit && [...seen].every((i) => i < limit), 'a refused stream reached the upstream')
  } finally {
    release()
    session.socket.destroy()
  }
})

test('a node:http2 client past the limit: that request fails with REFUSED_STREAM, the others on the session succeed', async () => {
  const tag = `client-${randomUUID()}`
  const session = await h2Connect(h2cUrl)
  try {
    // The gateway advertises no limit: node:http2 sends every request at once.
    const answers = Array.from({ length: STREAM_LIMIT + 1 }, (_, i) => h2Request(session, '/held/x', { headers: { 'x-request-id': `${tag}-${i}` } }))
    const refused = await answers[STREAM_LIMIT]!
    assert.equal(refused.rstCode, NGHTTP2_REFUSED_STREAM)
    while (held.length < STREAM_LIMIT) await once(holding, 'held')
    release()
    for (const [i, answer] of (await Promise.all(answers.slice(0, STREAM_LIMIT))).entries()) {
      assert.equal(answer.status, 200)
      assert.equal(answer.body, `${tag}-${i}:${'x'.repeat(64)}`)
    }
    assert.equal((await gw.accessLine(`${tag}-${STREAM_LIMIT}`)).outcome, 'too_many_streams')
    assert.equal(session.closed, false)
  } finally {
    release()
    session.destroy()
  }
})
