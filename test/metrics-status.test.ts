// /metrics and /status of a real gateway process (DESIGN.md §7, §8, §11): every series of the
// contract is exposed, each finished request is counted once with its outcome, labels never carry
// a raw request path, and /status shows what is in flight while it is.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { request } from 'undici'
import { startGateway, type RunningGateway } from './helpers/gateway.ts'
import { closedPort, startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'

let demo: DemoUpstream
let gw: RunningGateway
let downUrl: string

before(async () => {
  demo = await startDemoUpstream()
  downUrl = `http://127.0.0.1:${await closedPort()}`
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams:
  demo: { endpoints: [${demo.url}] }
  down: { endpoints: [${downUrl}] }
routes:
  - name: plain
    match: { pathPrefix: /headers }
    upstream: demo
  - name: stream
    match: { pathPrefix: /sse }
    upstream: demo
  - name: slow
    match: { pathPrefix: /slow/ }
    upstream: demo
    rewrite: { stripPrefix: /slow }
    timeouts: { firstByte: 300ms }
  - name: idle
    match: { pathPrefix: /idle/ }
    upstream: demo
    rewrite: { stripPrefix: /idle }
    timeouts: { streamIdle: 300ms }
  - name: down
    match: { pathPrefix: /down/ }
    upstream: down
    rewrite: { stripPrefix: /down }
`)
})

after(async () => {
  await gw?.stop()
  await demo?.close()
})

async function metricsText (): Promise<string> {
  const res = await request(`${gw.adminUrl}/metrics`)
  assert.equal(res.statusCode, 200)
  assert.match(String(res.headers['content-type']), /^text\/plain/)
  return await res.body.text()
}

interface Sample { name: string, labels: Record<string, string>, value: number }

/** The samples of the exposition text (label values here never hold quotes or escapes). */
function samples (text: string): Sample[] {
  const out: Sample[] = []
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null) continue
    const labels: Record<string, string> = {}
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="([^"]*)"/g)) labels[k!] = v!
    out.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return out
}

/** name{sorted labels} → value, for the series of one metric. */
function series (text: string, name: string): Map<string, number> {
  const map = new Map<string, number>()
  for (const s of samples(text)) {
    if (s.name !== name) continue
    const key = Object.keys(s.labels).sort().map((k) => `${k}=${s.labels[k]}`).join(',')
    map.set(key, s.value)
  }
  return map
}

/** What each series gained between two scrapes (series that did not change are left out). */
function delta (beforeText: string, afterText: string, name: string): Record<string, number> {
  const was = series(beforeText, name)
  const out: Record<string, number> = {}
  for (const [key, value] of series(afterText, name)) {
    const d = value - (was.get(key) ?? 0)
    if (d !== 0) out[key] = d
  }
  return out
}

const random = (): string => randomBytes(8).toString('hex')

/** Sends a request, reads whatever arrives (a cut stream included), and waits for its access line. */
async function exchange (path: string, headers: Record<string, string> = {}): Promise<{ status: number, access: Record<string, unknown> }> {
  const id = `m-${random()}`
  const res = await request(`${gw.url}${path}`, { headers: { ...headers, 'x-request-id': id } })
  try {
    for await (const _chunk of res.body) { /* drain */ }
  } catch { /* a cut stream */ }
  return { status: res.statusCode, access: await gw.accessLine(id) }
}

test('/metrics exposes every series of the contract and the process metrics', async () => {
  const { status } = await exchange('/headers')
  assert.equal(status, 200)
  const text = await metricsText()
  const types: Record<string, string> = {
    longhaul_requests_total: 'counter',
    longhaul_request_duration_seconds: 'histogram',
    longhaul_upstream_first_byte_seconds: 'histogram',
    longhaul_inflight_requests: 'gauge',
    longhaul_retries_total: 'counter',
    longhaul_upstream_endpoint_up: 'gauge',
    longhaul_upstream_queue_depth: 'gauge',
    longhaul_config_reloads_total: 'counter',
    longhaul_draining: 'gauge'
  }
  for (const [name, type] of Object.entries(types)) assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), name)
  // Duration buckets reach 30 minutes.
  assert.match(text, /^longhaul_request_duration_seconds_bucket\{le="1800",route="plain",outcome="ok"\} 1$/m)
  assert.match(text, /^longhaul_upstream_first_byte_seconds_bucket\{le="1800",route="plain"\} 1$/m)
  assert.match(text, /^longhaul_requests_total\{route="plain",upstream="demo",outcome="ok",status="200"\} 1$/m)
  assert.match(text, new RegExp(`^longhaul_upstream_endpoint_up\\{upstream="demo",endpoint="${demo.url}"\\} 1$`, 'm'))
  // Whether the closed port counts as up depends on health checking; the series is there.
  assert.match(text, new RegExp(`^longhaul_upstream_endpoint_up\\{upstream="down",endpoint="${downUrl}"\\} [01]$`, 'm'))
  assert.match(text, /^longhaul_upstream_queue_depth\{upstream="demo"\} 0$/m)
  assert.match(text, /^longhaul_config_reloads_total\{result="ok"\} 0$/m)
  assert.match(text, /^longhaul_config_reloads_total\{result="error"\} 0$/m)
  assert.match(text, /^longhaul_draining 0$/m)
  assert.match(text, /^longhaul_inflight_requests\{route="plain"\} 0$/m)
  // Process metrics (prom-client's defaults).
  for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
    assert.match(text, new RegExp(`^${name} \\S+$`, 'm'), name)
  }
})

test('each outcome is counted once per request with its route, upstream and status; nothing stays in flight; no raw path in any label', async () => {
  const before = await metricsText()
  const secrets: string[] = []
  const secret = (): string => { const s = random(); secrets.push(s); return s }
  const want: Record<string, number> = {}
  const expect = (route: string, upstream: string, outcome: string, status: number): void => {
    const key = `outcome=${outcome},route=${route},status=${status},upstream=${upstream}`
    want[key] = (want[key] ?? 0) + 1
  }
  const wantDurations: Record<string, number> = {}
  const check = (access: Record<string, unknown>, route: string, upstream: string, outcome: string, status: number): void => {
    assert.equal(access.outcome, outcome, JSON.stringify(access))
    assert.equal(access.status, status, JSON.stringify(access))
    expect(route, upstream, outcome, status)
    const key = `outcome=${outcome},route=${route}`
    wantDurations[key] = (wantDurations[key] ?? 0) + 1
  }

  for (let round = 0; round < 2; round++) {
    // ok, with the upstream's status (200, and a 404 of the upstream's own).
    check((await exchange(`/headers?r=${secret()}`)).access, 'plain', 'demo', 'ok', 200)
    check((await exchange(`/headers/${secret()}`)).access, 'plain', 'demo', 'ok', 404)
    check((await exchange(`/x/${secret()}`)).access, '', '', 'no_route', 404)
    check((await exchange(`/slow/headers?r=${secret()}`, { 'x-demo-delay-ms': '3000' })).access, 'slow', 'demo', 'first_byte_timeout', 504)
    // Cut after its headers went out: logged and counted with the status already sent.
    check((await exchange(`/idle/sse?stall-after=1&r=${secret()}`)).access, 'idle', 'demo', 'stream_idle_timeout', 200)
    check((await exchange(`/headers?r=${secret()}`, { 'x-demo-reset-after': '0' })).access, 'plain', 'demo', 'upstream_reset', 502)
    check((await exchange(`/down/${secret()}`)).access, 'down', 'down', 'upstream_unavailable', 503)
    check((await exchange(`/headers?r=${secret()}`, { 'x-longhaul-timeout-ms': 'soon' })).access, 'plain', 'demo', 'bad_request', 400)
  }

  const after = await metricsText()
  // A request that matched no route has empty route and upstream labels.
  assert.deepEqual(delta(before, after, 'longhaul_requests_total'), want)
  assert.deepEqual(delta(before, after, 'longhaul_request_duration_seconds_count'), wantDurations)
  for (const [key, value] of series(after, 'longhaul_inflight_requests')) assert.equal(value, 0, `longhaul_inflight_requests{${key}}`)
  assert.deepEqual([...series(after, 'longhaul_inflight_requests').keys()].sort(), ['route=down', 'route=idle', 'route=plain', 'route=slow'])
  for (const s of secrets) assert.ok(!after.includes(s), `the request path fragment ${s} leaked into /metrics`)
  const status = await (await request(`${gw.adminUrl}/status`)).body.json() as { inflight: number, upstreams: Record<string, { endpoints: Array<{ inflight: number }> }> }
  assert.equal(status.inflight, 0)
  for (const [name, u] of Object.entries(status.upstreams)) for (const e of u.endpoints) assert.equal(e.inflight, 0, name)
})

test('/status while a stream is open: state, config identity, inflight with a growing oldest age, endpoints with their inflight', async () => {
  const getStatus = async (): Promise<Record<string, any>> => await (await request(`${gw.adminUrl}/status`)).body.json() as Record<string, any>
  const started = await gw.waitForLine((l) => l.msg === 'started')
  const res = await request(`${gw.url}/sse?chunks=10&interval-ms=200`, { headers: { 'x-request-id': 'status-stream' } })
  assert.equal(res.statusCode, 200)
  const chunks = res.body[Symbol.asyncIterator]()
  await chunks.next() // the first event: the stream is flowing

  const first = await getStatus()
  assert.equal(first.state, 'serving')
  assert.equal(first.config.path, gw.configPath)
  assert.match(first.config.hash, /^[0-9a-f]{12}$/)
  assert.equal(first.config.hash, started.configHash)
  assert.ok(!Number.isNaN(Date.parse(first.config.loadedAt)))
  assert.equal(first.lastReload, null)
  assert.equal(first.inflight, 1)
  assert.ok(first.oldestInflightMs >= 150, `oldestInflightMs ${first.oldestInflightMs}`)
  assert.deepEqual(first.upstreams.demo.endpoints, [{ url: demo.url, healthy: true, inflight: 1 }])
  assert.equal(first.upstreams.down.endpoints.length, 1)
  assert.equal(first.upstreams.down.endpoints[0].url, downUrl)
  assert.equal(typeof first.upstreams.down.endpoints[0].healthy, 'boolean')
  assert.equal(first.upstreams.down.endpoints[0].inflight, 0)
  await new Promise((resolve) => setTimeout(resolve, 300))
  const second = await getStatus()
  assert.equal(second.inflight, 1)
  assert.ok(second.oldestInflightMs >= first.oldestInflightMs + 250, `${first.oldestInflightMs} → ${second.oldestInflightMs}`)
  const metrics = await metricsText()
  assert.match(metrics, /^longhaul_inflight_requests\{route="stream"\} 1$/m)

  for (let next = await chunks.next(); next.done !== true; next = await chunks.next()) { /* read to the end */ }
  assert.equal((await gw.accessLine('status-stream')).outcome, 'ok')
  const done = await getStatus()
  assert.equal(done.inflight, 0)
  assert.equal(done.oldestInflightMs, 0)
  assert.equal(done.upstreams.demo.endpoints[0].inflight, 0)
})
