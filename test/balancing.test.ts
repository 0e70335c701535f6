// Balancing end to end (DESIGN.md §3 `balance`, §11 "Attempts"): least-request is the power of
// two *distinct* random choices on in-flight count, so new work goes away from an endpoint that
// holds long requests (SCENARIOS.md 4: LLM requests vary by minutes); round-robin takes turns.
// The endpoint of each request is read from its access line.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import { startGateway, type RunningGateway } from './helpers/gateway.ts'
import { startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { endpointOf, upstreamStatus, waitFor } from './helpers/resilience.ts'

let demoA: DemoUpstream
let demoB: DemoUpstream
let demoC: DemoUpstream
let gw: RunningGateway

before(async () => {
  ;[demoA, demoB, demoC] = await Promise.all([startDemoUpstream(), startDemoUpstream(), startDemoUpstream()])
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams:
  two: { endpoints: [${demoA.url}, ${demoB.url}] }
  three: { endpoints: [${demoA.url}, ${demoB.url}, ${demoC.url}], balance: least-request }
  turns: { endpoints: [${demoA.url}, ${demoB.url}], balance: round-robin }
routes:
  - { name: two, match: { pathPrefix: /two/ }, upstream: two, rewrite: { stripPrefix: /two } }
  - { name: three, match: { pathPrefix: /three/ }, upstream: three, rewrite: { stripPrefix: /three } }
  - { name: turns, match: { pathPrefix: /turns/ }, upstream: turns, rewrite: { stripPrefix: /turns } }
`)
})

after(async () => {
  await gw?.stop()
  await Promise.all([demoA?.close(), demoB?.close(), demoC?.close()])
})

/** A short request; resolves with the endpoint its access line names. */
async function shortRequest (prefix: string): Promise<string> {
  const id = randomUUID()
  const res = await request(`${gw.url}${prefix}/headers`, { headers: { 'x-request-id': id } })
  await res.body.dump()
  assert.equal(res.statusCode, 200)
  const line = await gw.accessLine(id)
  assert.equal(line.attempts, 1, JSON.stringify(line))
  return line.endpoint as string
}

interface LongStream { id: string, endpoint: string, abort: () => Promise<void> }

/**
 * Opens one long event stream (40 s of events) and resolves once an upstream has it, naming the
 * endpoint. abort() ends it from the client side and resolves once the gateway logged it.
 */
async function openLongStream (prefix: string, demos: DemoUpstream[]): Promise<LongStream> {
  const id = randomUUID()
  const reached = new Promise<string>((resolve) => {
    const listeners = demos.map((demo) => {
      const listener = (e: { headers: Record<string, unknown> }): void => {
        if (e.headers['x-request-id'] !== id) return
        for (const { demo: d, listener: l } of listeners) d.events.off('request', l)
        resolve(demo.url)
      }
      demo.events.on('request', listener)
      return { demo, listener }
    })
  })
  const controller = new AbortController()
  const done = request(`${gw.url}${prefix}/sse`, { headers: { 'x-request-id': id, 'x-demo-chunks': '400', 'x-demo-interval-ms': '100' }, signal: controller.signal })
    .then(async (res) => { await res.body.dump({ limit: Infinity, signal: controller.signal }) })
    .catch(() => {})
  const endpoint = await reached
  return {
    id,
    endpoint,
    abort: async () => {
      controller.abort()
      await done
      const line = await gw.accessLine(id)
      assert.equal(line.outcome, 'client_aborted', JSON.stringify(line))
    }
  }
}

/**
 * Leaves exactly `count` long streams on `holder` and none elsewhere: streams are opened one at a
 * time (least-request spreads them over every endpoint), then the ones that went elsewhere are
 * ended by their clients.
 */
async function holdLongStreams (upstream: string, prefix: string, demos: DemoUpstream[], holder: DemoUpstream, count: number): Promise<LongStream[]> {
  const streams: LongStream[] = []
  for (let i = 0; i < 60 && streams.filter((s) => s.endpoint === holder.url).length < count; i++) streams.push(await openLongStream(prefix, demos))
  const held = streams.filter((s) => s.endpoint === holder.url)
  assert.equal(held.length, count, `least-request gave ${holder.url} ${held.length} of ${streams.length} streams`)
  await Promise.all(streams.filter((s) => s.endpoint !== holder.url).map((s) => s.abort()))
  const status = await upstreamStatus(gw, upstream)
  for (const e of status.endpoints) assert.equal(e.inflight, e.url === holder.url ? count : 0, JSON.stringify(status))
  return held
}

test('least-request sends new work away from the endpoint that holds long requests', async () => {
  const held = await holdLongStreams('two', '/two', [demoA, demoB], demoA, 5)
  try {
    const endpoints: string[] = []
    for (let i = 0; i < 20; i++) endpoints.push(await shortRequest('/two'))
    const toB = endpoints.filter((e) => e === demoB.url).length
    assert.ok(toB >= 18, `${toB} of 20 short requests went to the idle endpoint: ${JSON.stringify(endpoints)}`)
    // The long streams were not disturbed meanwhile.
    assert.equal(endpointOf(await upstreamStatus(gw, 'two'), demoA.url).inflight, 5)
  } finally {
    await Promise.all(held.map((s) => s.abort()))
  }
  await waitFor('no request in flight on upstream two', async () => (await upstreamStatus(gw, 'two')).endpoints.every((e) => e.inflight === 0))
})

test('least-request compares two distinct endpoints: with three, the busy one gets no short request', async () => {
  // A random pair that may be the same endpoint twice would hand the busy endpoint about one
  // request in nine; two distinct endpoints always include an idle one here.
  const held = await holdLongStreams('three', '/three', [demoA, demoB, demoC], demoA, 3)
  try {
    const endpoints: string[] = []
    for (let i = 0; i < 30; i++) endpoints.push(await shortRequest('/three'))
    assert.equal(endpoints.filter((e) => e === demoA.url).length, 0, JSON.stringify(endpoints))
    assert.ok(endpoints.includes(demoB.url) && endpoints.includes(demoC.url), `both idle endpoints get work: ${JSON.stringify(endpoints)}`)
  } finally {
    await Promise.all(held.map((s) => s.abort()))
  }
})

test('least-request with equal load spreads requests over both endpoints', async () => {
  const endpoints: string[] = []
  for (let i = 0; i < 30; i++) endpoints.push(await shortRequest('/two'))
  const toA = endpoints.filter((e) => e === demoA.url).length
  // Ties are broken at random: 30 coin tosses land between 5 and 25 heads but for one run in 17,000.
  assert.ok(toA >= 5 && toA <= 25, `${toA} of 30 to A: ${JSON.stringify(endpoints)}`)
})

test('round-robin alternates exactly', async () => {
  const endpoints: string[] = []
  for (let i = 0; i < 12; i++) endpoints.push(await shortRequest('/turns'))
  const first = endpoints[0]!
  const second = first === demoA.url ? demoB.url : demoA.url
  assert.deepEqual(endpoints, endpoints.map((_, i) => i % 2 === 0 ? first : second))
})

test('round-robin takes turns whatever the load: a held stream does not move the turn', async () => {
  const held = await openLongStream('/turns', [demoA, demoB])
  try {
    const endpoints: string[] = []
    for (let i = 0; i < 8; i++) endpoints.push(await shortRequest('/turns'))
    const first = endpoints[0]!
    assert.equal(first === held.endpoint, false, 'the turn after the stream\'s endpoint is the other one')
    const second = first === demoA.url ? demoB.url : demoA.url
    assert.deepEqual(endpoints, endpoints.map((_, i) => i % 2 === 0 ? first : second))
  } finally {
    await held.abort()
  }
})
