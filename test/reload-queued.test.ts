// A reload that changes an upstream while requests wait for its one connection
// (maxConnectionsPerEndpoint): the old upstream's pool closes only once they are done, so every
// request of the old generation is served, none sent to a closed pool and blamed on the upstream
// as `upstream_reset`.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import { startGateway, type RunningGateway } from './helpers/gateway.ts'
import { startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { assertAccess } from './helpers/faults.ts'
import { upstreamStatus, waitFor } from './helpers/resilience.ts'

let gw: RunningGateway | undefined
const demos: DemoUpstream[] = []
after(async () => {
  await gw?.stop()
  await Promise.all(demos.map((d) => d.close()))
})

const config = (endpoint: string): string => `
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams:
  main: { endpoints: [${endpoint}], maxConnectionsPerEndpoint: 1, limits: { maxConcurrent: 100, queueTimeout: 5s } }
routes:
  - { name: x, match: { pathPrefix: /x/ }, upstream: main, rewrite: { stripPrefix: /x } }
`

test('a reload that moves an upstream while requests are queued for its connection serves every one of them', async () => {
  const a = await startDemoUpstream()
  const b = await startDemoUpstream()
  demos.push(a, b)
  gw = await startGateway(config(a.url))
  const ids = [0, 1, 2].map((i) => `queued-${i}-${randomUUID()}`)
  const answers = ids.map(async (id) => {
    const res = await request(`${gw!.url}/x/headers`, { headers: { 'x-request-id': id, 'x-demo-delay-ms': '300' } })
    return { status: res.statusCode, body: await res.body.text() }
  })
  await waitFor('one request in flight, two queued', async () => (await upstreamStatus(gw!, 'main')).queued === 2)
  await writeFile(gw.configPath, config(b.url))
  gw.process.kill('SIGHUP')
  await gw.waitForLine((l) => l.msg === 'config reloaded')
  for (const answer of await Promise.all(answers)) assert.equal(answer.status, 200, answer.body)
  for (const id of ids) {
    const line = await gw.accessLine(id)
    assertAccess(line, { outcome: 'ok', status: 200 })
    assert.equal(line.endpoint, a.url, 'served by the generation it arrived in')
  }
  // The new generation goes to the new endpoint.
  const id = `after-${randomUUID()}`
  const res = await request(`${gw.url}/x/headers`, { headers: { 'x-request-id': id } })
  assert.equal(res.statusCode, 200, await res.body.text())
  assert.equal((await gw.accessLine(id)).endpoint, b.url)
})
