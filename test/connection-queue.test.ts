// No silent wait for a connection (DESIGN.md §1.4): by default nothing caps the connections to an
// endpoint, so thousands of concurrent streams are all served; where maxConnectionsPerEndpoint
// caps them, a request beyond the cap waits in the open (longhaul_upstream_queue_depth, /status)
// for at most the queue timeout, then ends as `overloaded` (503 + Retry-After), never reaching
// the upstream and never as a first_byte_timeout that names the wrong wait.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import { startGateway, prefixRoute, runCli, writeConfig, type RunningGateway, type LogLine } from './helpers/gateway.ts'
import { startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { assertAccess, assertGatewayError } from './helpers/faults.ts'
import { metric, upstreamStatus, waitFor } from './helpers/resilience.ts'

const QUEUE_TIMEOUT_MS = 700

let demo: DemoUpstream
let gw: RunningGateway
const arrivals = new Map<string, number>()

/** An SSE upstream that holds every response until release(), then sends two events and ends. */
const holder = {
  waiting: [] as http.ServerResponse[],
  release (): void {
    for (const res of holder.waiting.splice(0)) {
      res.write('data: 1\n\n')
      res.end('data: 2\n\n')
    }
  }
}
const holderServer = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/event-stream' })
  holder.waiting.push(res)
})

before(async () => {
  await new Promise<void>((resolve) => holderServer.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve))
  demo = await startDemoUpstream()
  demo.events.on('request', (e) => {
    const id = e.headers['x-request-id']
    if (typeof id === 'string') arrivals.set(id, performance.now())
  })
  // capped: two connections; its admission (`limits`) never queues, it only sets the queue timeout.
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams:
  held: { endpoints: ['http://127.0.0.1:${(holderServer.address() as { port: number }).port}'] }
  capped: { endpoints: [${demo.url}], maxConnectionsPerEndpoint: 2, limits: { maxConcurrent: 1000, queueTimeout: ${QUEUE_TIMEOUT_MS}ms } }
routes:
${prefixRoute('capped', '', 'capped')}
${prefixRoute('held', '', 'held')}
`)
})

after(async () => {
  holder.release()
  await gw?.stop()
  await demo?.close()
  holderServer.closeAllConnections()
  await new Promise((resolve) => holderServer.close(resolve))
})

interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: string, access: LogLine, tookMs: number }

async function send (path: string, headers: Record<string, string> = {}): Promise<Answer> {
  const id = headers['x-request-id'] ?? randomUUID()
  const at = performance.now()
  const res = await request(`${gw.url}${path}`, { headers: { ...headers, 'x-request-id': id } })
  const body = await res.body.text()
  return { status: res.statusCode, headers: res.headers, body, access: await gw.accessLine(id), tookMs: performance.now() - at }
}

/** A stream that holds one of the capped endpoint's connections until released. */
async function hold (): Promise<() => Promise<void>> {
  const id = `held-${randomUUID()}`
  const controller = new AbortController()
  const done = request(`${gw.url}/capped/sse?chunks=1000&interval-ms=100`, { headers: { 'x-request-id': id }, signal: controller.signal })
    .then(async (res) => { await res.body.dump() })
    .catch(() => {})
  await waitFor(`the upstream to receive ${id}`, async () => arrivals.has(id))
  return async () => {
    controller.abort()
    await done
    await gw.accessLine(id)
  }
}

test('beyond maxConnectionsPerEndpoint, requests wait in the open and end overloaded after the queue timeout', async () => {
  const releases = [await hold(), await hold()]
  try {
    const ids = [0, 1, 2].map(() => `waiting-${randomUUID()}`)
    const answers = ids.map((id) => send('/capped/health', { 'x-request-id': id }))
    // While they wait: the metric, the upstream's queued count and the endpoint's own queue.
    await waitFor('3 waiting for a connection in /status', async () => (await upstreamStatus(gw, 'capped')).queued === 3)
    assert.equal(await metric(gw, 'longhaul_upstream_queue_depth', { upstream: 'capped' }), 3)
    const endpoint = (await upstreamStatus(gw, 'capped')).endpoints[0] as unknown as { inflight: number, queued: number, maxInflight: number }
    assert.deepEqual({ inflight: endpoint.inflight, queued: endpoint.queued, maxInflight: endpoint.maxInflight }, { inflight: 2, queued: 3, maxInflight: 2 })

    for (const res of await Promise.all(answers)) {
      assertGatewayError(res, { outcome: 'overloaded', status: 503, proxyStatus: 'connection_limit_reached', limitMs: QUEUE_TIMEOUT_MS, route: 'capped', upstream: 'capped' })
      assert.equal(res.headers['retry-after'], '1')
      assertAccess(res.access, { outcome: 'overloaded', status: 503, limitMs: QUEUE_TIMEOUT_MS })
      assert.equal(res.access.attempts, 0, 'never sent to an endpoint')
      assert.match(String(JSON.parse(res.body).error.message), /maxConnectionsPerEndpoint/)
      assert.ok(res.tookMs >= QUEUE_TIMEOUT_MS - 5 && res.tookMs < QUEUE_TIMEOUT_MS + 3000, `ended by the queue timeout (${Math.round(res.tookMs)} ms)`)
    }
    for (const id of ids) assert.equal(arrivals.has(id), false, 'a waiting request never reaches the upstream')
    assert.equal((await upstreamStatus(gw, 'capped')).queued, 0)
    assert.equal(await metric(gw, 'longhaul_upstream_queue_depth', { upstream: 'capped' }), 0)
  } finally {
    for (const release of releases) await release()
  }
})

test('a request waiting for a connection is sent as soon as one comes free', async () => {
  const [first, second] = [await hold(), await hold()]
  try {
    const id = `next-${randomUUID()}`
    const answer = send('/capped/health', { 'x-request-id': id })
    await waitFor('1 waiting', async () => (await upstreamStatus(gw, 'capped')).queued === 1)
    const freedAt = performance.now()
    await first()
    const res = await answer
    assert.equal(res.status, 200, res.body)
    assertAccess(res.access, { outcome: 'ok', status: 200 })
    assert.ok(arrivals.get(id)! >= freedAt, 'sent upstream only once a connection was free')
  } finally {
    await second()
  }
})

test('a client that leaves while waiting for a connection leaves the queue', async () => {
  const releases = [await hold(), await hold()]
  try {
    const id = `leaver-${randomUUID()}`
    const controller = new AbortController()
    const gone = request(`${gw.url}/capped/health`, { headers: { 'x-request-id': id }, signal: controller.signal }).catch(() => {})
    await waitFor('1 waiting', async () => (await upstreamStatus(gw, 'capped')).queued === 1)
    controller.abort()
    await gone
    assertAccess(await gw.accessLine(id), { outcome: 'client_aborted', status: 499 })
    assert.equal((await upstreamStatus(gw, 'capped')).queued, 0)
    assert.equal(await metric(gw, 'longhaul_upstream_queue_depth', { upstream: 'capped' }), 0)
  } finally {
    for (const release of releases) await release()
  }
})

test('with defaults, 2,000 concurrent streams to one endpoint are all in flight at once and all served', async () => {
  const n = 2000
  const ok0 = await metric(gw, 'longhaul_requests_total', { route: 'held', upstream: 'held', outcome: 'ok', status: '200' })
  const results: Array<Promise<string>> = []
  const port = Number(new URL(gw.url).port)
  for (let i = 0; i < n; i++) {
    results.push(new Promise((resolve) => {
      // agent: false: one connection per stream, as 2,000 clients would have.
      const req = http.get({ host: '127.0.0.1', port, path: '/held/stream', agent: false }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => { body += d })
        res.on('close', () => resolve(res.statusCode === 200 && res.complete ? body : `status ${res.statusCode}, complete ${res.complete}`))
      })
      req.on('error', (err) => resolve(err.message))
    }))
    if (i % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 10))
  }
  // Far beyond the 256 connections the old default capped an endpoint at: the upstream holds
  // every response until all of them reached it.
  await waitFor(`${n} streams at the upstream`, async () => holder.waiting.length === n, 30_000)
  const status = await upstreamStatus(gw, 'held')
  assert.deepEqual({ inflight: status.endpoints[0]!.inflight, queued: status.queued }, { inflight: n, queued: 0 })
  holder.release()
  const bodies = await Promise.all(results)
  const failed = bodies.filter((b) => b !== 'data: 1\n\ndata: 2\n\n')
  assert.equal(failed.length, 0, `every stream served; first failures: ${failed.slice(0, 3).join(' | ')}`)
  await waitFor('every access line counted', async () => (await metric(gw, 'longhaul_requests_total', { route: 'held', upstream: 'held', outcome: 'ok', status: '200' })) - ok0 === n, 10_000)
})

test('check --explain says how many requests the route\'s upstream takes at once and what the next one does', async () => {
  const { path } = await writeConfig(`
upstreams:
  capped: { endpoints: ['http://127.0.0.1:9'], maxConnectionsPerEndpoint: 4, limits: { maxConcurrent: 64, queueTimeout: 5s } }
  open: { endpoints: ['http://127.0.0.1:9'] }
routes:
  - { name: capped, match: { pathPrefix: /c }, upstream: capped }
  - { name: open, upstream: open }
`)
  const capped = await runCli(['check', '--config', path, '--explain', 'capped'])
  assert.equal(capped.code, 0, capped.stderr)
  assert.match(capped.stdout, /in flight +at most 64 \(limits\.maxConcurrent\)/)
  assert.match(capped.stdout, /connections per endpoint +at most 4 \(maxConnectionsPerEndpoint\): a request beyond them waits in the open .* up to 5s, then overloaded/)
  const open = await runCli(['check', '--config', path, '--explain', 'open'])
  assert.match(open.stdout, /in flight +unlimited/)
  assert.match(open.stdout, /connections per endpoint +unlimited: HTTP\/1\.1, one per request in flight/)
})
