// dns:// endpoints: resolved to every A record, re-resolved; endpoints come and go under load
// without a failed request, and a DNS failure keeps the last good set. The resolver is a test
// DNS server on loopback; the two "pods" are demo upstreams on 127.0.0.2 and 127.0.0.3.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Agent, request } from 'undici'
import { startGateway, type RunningGateway } from './helpers/gateway.ts'
import { startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { startTestDns, type TestDns } from './helpers/dns.ts'

let dns: TestDns
let podA: DemoUpstream
let podB: DemoUpstream
let gw: RunningGateway
const client = new Agent({ connections: 16 })

before(async () => {
  dns = await startTestDns()
  podA = await startDemoUpstream({ host: '127.0.0.2' })
  podB = await startDemoUpstream({ host: '127.0.0.3', port: podA.port })
  dns.set('chat.svc.test', ['127.0.0.2'])
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams:
  chat:
    endpoints: [dns://chat.svc.test:${podA.port}]
    dns: { refresh: 200ms, resolver: ${dns.address} }
routes:
  - name: chat
    upstream: chat
`)
})

after(async () => {
  await gw.stop()
  await client.close()
  await Promise.all([podA.close(), podB.close(), dns.close()])
})

async function get (path: string): Promise<{ status: number, endpoint: string }> {
  const res = await request(`${gw.url}${path}`, { dispatcher: client })
  await res.body.dump()
  const line = await gw.accessLine(res.headers['x-request-id'] as string)
  return { status: res.statusCode, endpoint: String(line.endpoint) }
}

test('endpoints come and go with the DNS answer, under load, with no failed request', async () => {
  const first = await get('/health')
  assert.equal(first.status, 200)
  assert.equal(first.endpoint, `http://127.0.0.2:${podA.port}`)

  // A long request in flight on pod A, which is about to leave.
  const long = request(`${gw.url}/sse?chunks=15&interval-ms=100`, { dispatcher: client }).then(async (res) => ({ status: res.statusCode, text: await res.body.text() }))

  // Steady load for the whole test; every answer must be a 200.
  const statuses: number[] = []
  const seen = new Set<string>()
  let loading = true
  const worker = async (): Promise<void> => {
    while (loading) {
      const r = await get('/health')
      statuses.push(r.status)
      seen.add(r.endpoint)
    }
  }
  const workers = [worker(), worker(), worker()]

  dns.set('chat.svc.test', ['127.0.0.2', '127.0.0.3'])
  await gw.waitForLine((l) => l.msg === 'dns endpoints changed' && JSON.stringify(l.added) === JSON.stringify([`http://127.0.0.3:${podA.port}`]), 5000)
  dns.set('chat.svc.test', ['127.0.0.3'])
  await gw.waitForLine((l) => l.msg === 'dns endpoints changed' && JSON.stringify(l.removed) === JSON.stringify([`http://127.0.0.2:${podA.port}`]), 5000)
  // After the removal, new requests only go to pod B.
  const settled = await Promise.all([get('/health'), get('/health'), get('/health'), get('/health')])
  loading = false
  await Promise.all(workers)

  assert.ok(statuses.length > 10, `only ${statuses.length} requests under load`)
  assert.deepEqual([...new Set(statuses)], [200])
  assert.ok(seen.has(`http://127.0.0.3:${podA.port}`), 'pod B never got traffic')
  for (const r of settled) assert.equal(r.endpoint, `http://127.0.0.3:${podA.port}`)
  // The request in flight on the pod that left finished whole.
  const done = await long
  assert.equal(done.status, 200)
  assert.equal(done.text.match(/event: tick/g)?.length, 15)
})

test('a failed DNS lookup keeps the last endpoints and says so', async () => {
  dns.fail(true)
  await gw.waitForLine((l) => l.msg === 'dns lookup failed; keeping the last endpoints' && l.name === 'chat.svc.test', 8000)
  const r = await get('/health')
  assert.equal(r.status, 200)
  assert.equal(r.endpoint, `http://127.0.0.3:${podA.port}`)
  dns.fail(false)
})

test('dns settings without a dns:// endpoint are an error, not silently ignored', async () => {
  const { runCli, writeConfig } = await import('./helpers/gateway.ts')
  const { path } = await writeConfig(`upstreams:
  chat:
    endpoints: [http://127.0.0.1:9]
    dns: { refresh: 1s }
routes: [{ name: chat, upstream: chat }]
`)
  const r = await runCli(['check', '--config', path])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /:4:5 upstreams\.chat\.dns: dns settings apply to dns:\/\/ endpoints/)
})
