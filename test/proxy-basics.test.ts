// Routing and forwarding through the real gateway process to the demo upstream.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { request } from 'undici'
import { startGateway, type RunningGateway } from './helpers/gateway.ts'
import { RawClient } from './helpers/raw-client.ts'
import { startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'

let demo: DemoUpstream
let other: DemoUpstream
let gw: RunningGateway

before(async () => {
  demo = await startDemoUpstream()
  other = await startDemoUpstream()
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams:
  demo: { endpoints: [${demo.url}] }
  other: { endpoints: [${other.url}] }
routes:
  - name: api-host
    match: { host: api.example.com, pathPrefix: /headers }
    upstream: other
  - name: wildcard-host
    match: { host: "*.tenant.test" }
    upstream: other
  - name: posts-only
    match: { pathPrefix: /echo, methods: [POST, PUT] }
    upstream: demo
  - name: stripped
    match: { pathPrefix: /api/ }
    upstream: demo
    rewrite: { stripPrefix: /api }
  - name: known
    match: { pathPrefix: /headers }
    upstream: demo
  - name: sse
    match: { pathPrefix: /sse }
    upstream: demo
`)
})

after(async () => {
  await gw.stop()
  await demo.close()
  await other.close()
})

async function headersSeen (path: string, headers: Record<string, string> = {}): Promise<{ status: number, seen: { url: string, headers: Record<string, string> }, responseHeaders: Record<string, unknown> }> {
  const res = await request(`${gw.url}${path}`, { headers })
  const text = await res.body.text()
  return { status: res.statusCode, seen: res.statusCode === 200 ? JSON.parse(text) : null, responseHeaders: res.headers }
}

test('routes match in order by host, path prefix and method; the first match wins', async () => {
  const byHost = await headersSeen('/headers', { host: 'api.example.com' })
  assert.equal(byHost.status, 200)
  assert.equal(byHost.seen.headers['x-forwarded-host'], 'api.example.com')
  const line = await gw.accessLine(byHost.responseHeaders['x-request-id'] as string)
  assert.equal(line.route, 'api-host')
  assert.equal(line.endpoint, other.url)

  const wildcard = await request(`${gw.url}/headers`, { headers: { host: 'a.tenant.test:8080' } })
  await wildcard.body.text()
  assert.equal((await gw.accessLine(wildcard.headers['x-request-id'] as string)).route, 'wildcard-host')

  const plain = await request(`${gw.url}/headers`)
  await plain.body.text()
  assert.equal((await gw.accessLine(plain.headers['x-request-id'] as string)).route, 'known')
})

test('a method outside the route\'s list falls through to no_route (404) with the error contract', async () => {
  const res = await request(`${gw.url}/echo`, { method: 'GET' })
  assert.equal(res.statusCode, 404)
  assert.equal(res.headers['x-longhaul-error'], 'no_route')
  assert.equal(res.headers['content-type'], 'application/json')
  assert.match(String(res.headers['proxy-status']), /^longhaul; error=destination_not_found/)
  const body = await res.body.json() as { error: Record<string, unknown> }
  assert.equal(body.error.code, 'no_route')
  assert.equal(body.error.route, null)
  assert.equal(body.error.requestId, res.headers['x-request-id'])
  const line = await gw.accessLine(res.headers['x-request-id'] as string)
  assert.equal(line.outcome, 'no_route')
  assert.equal(line.status, 404)
})

test('rewrite.stripPrefix removes the prefix and keeps the query', async () => {
  const { status, seen } = await headersSeen('/api/headers?x=1')
  assert.equal(status, 200)
  assert.equal(seen.url, '/headers?x=1')
})

/** node:http as the client: undici refuses to send hop-by-hop headers at all. */
function nodeGet (path: string, headers: Record<string, string>): Promise<{ seen: { headers: Record<string, string> }, responseHeaders: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http.get(`${gw.url}${path}`, { headers, agent: false }, (res) => {
      let text = ''
      res.on('data', (d: Buffer) => { text += d.toString() })
      res.on('end', () => resolve({ seen: JSON.parse(text), responseHeaders: res.headers }))
    }).on('error', reject)
  })
}

test('hop-by-hop headers are dropped, X-Forwarded-* set, x-request-id kept or generated', async () => {
  const { seen, responseHeaders } = await nodeGet('/headers', {
    connection: 'keep-alive, x-secret-hop',
    'x-secret-hop': 'must not pass',
    'keep-alive': 'timeout=5',
    'proxy-authorization': 'Basic abc',
    'x-forwarded-for': '203.0.113.9',
    'x-request-id': 'client-chosen-id',
    'x-kept': 'yes'
  })
  const h = seen.headers
  assert.equal(h['x-secret-hop'], undefined)
  assert.equal(h['keep-alive'], undefined)
  assert.equal(h['proxy-authorization'], undefined)
  assert.equal(h['x-kept'], 'yes')
  assert.equal(h['x-forwarded-for'], '203.0.113.9, 127.0.0.1')
  assert.equal(h['x-forwarded-proto'], 'http')
  assert.equal(h['x-forwarded-host'], gw.addresses[0])
  assert.equal(h['x-request-id'], 'client-chosen-id')
  assert.equal(responseHeaders['x-request-id'], 'client-chosen-id')
  // the route's request limit (10m default) is sent upstream as the budget left
  const budget = Number(h['x-longhaul-timeout-ms'])
  assert.ok(budget > 590_000 && budget <= 600_000, `budget ${budget}`)

  const generated = await headersSeen('/headers')
  assert.match(String(generated.responseHeaders['x-request-id']), /^[0-9a-f-]{36}$/)
  assert.equal(generated.seen.headers['x-request-id'], generated.responseHeaders['x-request-id'])
})

test('an event stream gets the no-buffer hints and arrives event by event', async () => {
  const res = await request(`${gw.url}/sse?chunks=3&interval-ms=20`)
  assert.equal(res.statusCode, 200)
  assert.equal(res.headers['x-accel-buffering'], 'no')
  assert.match(String(res.headers['cache-control']), /no-transform/)
  const text = await res.body.text()
  assert.equal(text.match(/event: tick/g)?.length, 3)
})

test('an absolute-form request target is refused as bad_request: only configured upstreams are contacted', async () => {
  const client = new RawClient(gw.url)
  await client.send('GET http://169.254.169.254/latest/meta-data HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n')
  await client.closed
  const response = client.text()
  assert.match(response, /^HTTP\/1\.1 400 /)
  assert.match(response, /x-longhaul-error: bad_request/)
  assert.match(response, /"code":"bad_request"/)
})

test('malformed HTTP is answered 400 bad_request by the gateway itself', async () => {
  const client = new RawClient(gw.url)
  await client.send('GET /headers HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')
  await client.closed
  const response = client.text()
  assert.match(response, /^HTTP\/1\.1 400 /)
  assert.match(response, /x-longhaul-error: bad_request/)
  const line = await gw.waitForLine((l) => l.msg === 'access' && l.outcome === 'bad_request' && l.path === '')
  assert.equal(line.status, 400)
})
