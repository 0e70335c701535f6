// Hostile HTTP/2 input (issue: hostile input), with node:http2 sessions against an h2c listener:
// a rapid-reset flood spread over many connections is bounded gateway-wide (GOAWAY to the
// abusers, a metric, no upstream request for a stream reset before dispatch, a healthy client
// served as fast as when it is quiet); a `host` that disagrees with `:authority` is malformed.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import { startGateway, prefixRoute, type RunningGateway } from './helpers/gateway.ts'
import { startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { h2Connect, h2Request } from './helpers/h2.ts'
import { FRAME, errorCode, headersFrame, rawH2Session, rstStreamFrame } from './helpers/h2-frames.ts'

const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants

let demo: DemoUpstream
let gw: RunningGateway
let h2cUrl: string
/** Upstream requests by x-request-id prefix. */
const upstreamSaw: string[] = []

before(async () => {
  demo = await startDemoUpstream()
  demo.events.on('request', (r) => upstreamSaw.push(String(r.headers['x-request-id'])))
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0, protocol: h2c }]
admin: { address: 127.0.0.1:0 }
# A small budget, so that the flood spends it however slowly a loaded machine reads it.
downstream: { resetFlood: { rate: 50, burst: 200, perConnection: 20 } }
upstreams:
  demo: { endpoints: [${demo.url}] }
routes:
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
