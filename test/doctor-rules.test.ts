// Each doctor rule fires on a minimal chain and stays silent once the chain is fixed (issue 7).
// Chains are real chain files in a temp directory, loaded the way `longhaul doctor` loads them.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chain } from './helpers/chains.ts'
import { RULES } from '../src/doctor/rules.ts'
import type { Chain, Finding } from '../src/doctor/model.ts'


function run (c: Chain, rule: string): Finding[] {
  return RULES[rule]!(c)
}

const STREAM_5M = 'workload: { duration: 5m, streaming: true, maxSilence: 40s }'
const BATCH_5M = 'workload: { duration: 5m }'

test('idle-nesting: a client pool that outlives the server keep-alive is an error; a shorter one is silent', async () => {
  const bad = await chain(`${BATCH_5M}
hops:
  - { name: proxy, preset: go-http-client }
  - { name: app, preset: uvicorn }
`)
  const [f] = run(bad, 'idle-nesting')
  assert.equal(f?.severity, 'error')
  assert.deepEqual(f.hops, ['proxy', 'app'])
  assert.equal(f.values['proxy.clientIdleTimeout']?.ms, 90_000)
  assert.equal(f.values['app.serverIdleTimeout']?.ms, 5000)
  assert.match(f.symptom, /`EOF`|reset/)
  assert.match(f.fix, /below 5s/)

  const fixed = await chain(`${BATCH_5M}
hops:
  - { name: proxy, preset: go-http-client, set: { clientIdleTimeout: 4s } }
  - { name: app, preset: uvicorn }
`)
  assert.deepEqual(run(fixed, 'idle-nesting'), [])
})

test('idle-nesting: an equal idle timeout still races; connections reused sooner than the server idle make it a warning', async () => {
  const equal = await chain(`${BATCH_5M}
hops:
  - { name: lb, preset: aws-alb }
  - { name: app, preset: node-http-server, set: { serverIdleTimeout: 60s } }
`)
  assert.equal(run(equal, 'idle-nesting')[0]?.severity, 'error')
  const busy = await chain(`workload: { duration: 5m, idleBetweenRequests: 2s }
hops:
  - { name: proxy, preset: go-http-client }
  - { name: app, preset: uvicorn }
`)
  assert.equal(run(busy, 'idle-nesting')[0]?.severity, 'warning')
})

test('idle-nesting: through a layer-4 load balancer, the pool in front of it meets the server behind it', async () => {
  const c = await chain(`${BATCH_5M}
hops:
  - { name: client, preset: go-http-client }
  - { name: nlb, preset: aws-nlb }
  - { name: app, preset: uvicorn }
`)
  const findings = run(c, 'idle-nesting')
  assert.equal(findings.length, 1)
  assert.deepEqual(findings[0]!.hops, ['client', 'nlb', 'app'])
})

test('total-cut: a request limit shorter than the workload cuts a stream mid-way; none fixes it', async () => {
  const bad = await chain(`${STREAM_5M}
hops:
  - { name: curl, preset: curl }
  - { name: envoy, preset: envoy }
  - { name: app, preset: uvicorn }
`)
  const [f] = run(bad, 'total-cut')
  assert.equal(f?.severity, 'error')
  assert.equal(f.cutAtMs, 15_000)
  assert.match(f.symptom, /upstream request timeout/)
  assert.ok(f.symptom.includes('curl: (92) HTTP/2 stream 1 was not closed cleanly: INTERNAL_ERROR (err 2)'), f.symptom)
  const fixed = await chain(`${STREAM_5M}
hops:
  - { name: curl, preset: curl }
  - { name: envoy, preset: envoy, set: { requestTimeout: none } }
  - { name: app, preset: uvicorn }
`)
  assert.deepEqual(run(fixed, 'total-cut'), [])
})

test('total-cut: for an answer that comes at the end, a first-byte limit cuts it too', async () => {
  const bad = await chain(`workload: { duration: 6m }
hops:
  - { name: script, preset: node-fetch }
  - { name: app, preset: uvicorn }
`)
  const [f] = run(bad, 'total-cut')
  assert.equal(f?.values['script.firstByteTimeout']?.ms, 300_000)
  assert.match(f.symptom, /UND_ERR_HEADERS_TIMEOUT/)
  const fixed = await chain(`workload: { duration: 6m }
hops:
  - { name: script, preset: node-fetch, set: { firstByteTimeout: 10m } }
  - { name: app, preset: uvicorn }
`)
  assert.deepEqual(run(fixed, 'total-cut'), [])
})

test('silence-cut: an idle limit not longer than the silence cuts; a heartbeat behind it protects it, one in front does not', async () => {
  const hops = (nginx: string, app: string, client = '') => `workload: { duration: 5m, streaming: true, maxSilence: 90s }
hops:
  - { name: browser, preset: chrome${client} }
  - { name: nginx, preset: nginx${nginx} }
  - { name: app, preset: uvicorn${app} }
`
  const [f] = run(await chain(hops('', '')), 'silence-cut')
  assert.equal(f?.severity, 'error')
  assert.deepEqual(f.hops, ['nginx'])
  assert.match(f.symptom, /upstream timed out \(110: Connection timed out\)/)
  assert.match(f.symptom, /ERR_HTTP2_PROTOCOL_ERROR/)

  assert.deepEqual(run(await chain(hops(', set: { streamIdleTimeout: 120s }', '')), 'silence-cut'), [])
  assert.deepEqual(run(await chain(hops('', ', set: { heartbeat: 15s }')), 'silence-cut'), [])
  const slow = run(await chain(hops('', ', set: { heartbeat: 60s }')), 'silence-cut')
  assert.match(slow[0]!.problem, /heartbeat of app .* is not shorter/)
  const inFront = run(await chain(hops('', '', ', set: { heartbeat: 15s }')), 'silence-cut')
  assert.match(inFront[0]!.problem, /heartbeat of browser does not help/)
})

test('silence-cut: a non-streaming answer is one long silence for idle timers that also wait for the headers', async () => {
  const c = await chain(`${BATCH_5M}
hops:
  - { name: client, preset: httpx }
  - { name: gateway, preset: longhaul }
  - { name: app, preset: uvicorn }
`)
  // httpx's read timeout waits for the headers too; longhaul's streamIdle starts after them.
  assert.deepEqual(run(c, 'silence-cut').map((f) => f.hops[0]), ['client'])
})

test('timeout-nesting: an outer hop that gives up no later than the one behind it is a warning', async () => {
  const make = (outer: string) => `workload: { duration: 1m }
hops:
  - { name: client, preset: python-requests, set: { requestTimeout: ${outer} } }
  - { name: app, preset: gunicorn, set: { requestTimeout: 120s } }
`
  const [f] = run(await chain(make('120s')), 'timeout-nesting')
  assert.equal(f?.severity, 'warning')
  assert.deepEqual(f.hops, ['client', 'app'])
  assert.match(f.fix, /x-longhaul-timeout-ms/)
  assert.deepEqual(run(await chain(make('125s')), 'timeout-nesting'), [])
})

test('write-timeout: a write timeout shorter than the work spoils the answer', async () => {
  const make = (write: string) => `workload: { duration: 90s }
hops:
  - { name: client, preset: python-requests }
  - { name: service, preset: go-http-server, set: { writeTimeout: ${write} } }
`
  const [f] = run(await chain(make('60s')), 'write-timeout')
  assert.equal(f?.severity, 'error')
  assert.ok(f.symptom.includes('BadStatusLine("\'\'",)'), f.symptom)
  assert.deepEqual(run(await chain(make('none')), 'write-timeout'), [])
})

test('termination-grace: the grace period must cover the drain delay and the workload; a drain timeout must cover the workload', async () => {
  const make = (deploy: string, app = 'longhaul') => `${BATCH_5M}
hops:
  - { name: client, preset: curl }
  - { name: app, preset: ${app} }
deploy: ${deploy}
`
  const [f] = run(await chain(make('{ hop: app }')), 'termination-grace')
  assert.equal(f?.severity, 'error')
  assert.equal(f.values['deploy.terminationGracePeriod']?.ms, 30_000)
  assert.equal(f.values['app.drainDelay']?.ms, 5000)
  assert.match(f.symptom, /502 Bad Gateway/)
  assert.deepEqual(run(await chain(make('{ hop: app, terminationGracePeriod: 310s }')), 'termination-grace'), [])
  const drains = run(await chain(make('{ terminationGracePeriod: 10m }', 'gunicorn')), 'termination-grace')
  assert.deepEqual(drains.map((d) => Object.keys(d.values)[0]), ['app.drainTimeout'])
})

test('dead-peer: a long silence with no heartbeat anywhere is a note; a heartbeat silences it', async () => {
  const make = (app: string) => `${STREAM_5M}
hops:
  - { name: client, preset: curl }
  - { name: app, preset: uvicorn${app} }
`
  const [f] = run(await chain(make('')), 'dead-peer')
  assert.equal(f?.severity, 'info')
  assert.match(f.symptom, /924\.6 s/)
  assert.deepEqual(run(await chain(make(', set: { heartbeat: 15s }')), 'dead-peer'), [])
})

test('unbounded-wait: a chain where nothing bounds a stuck request is a warning', async () => {
  const make = (client: string) => `${BATCH_5M}
hops:
  - { name: client, preset: python-requests${client} }
  - { name: app, preset: uvicorn }
`
  assert.equal(run(await chain(make('')), 'unbounded-wait')[0]?.severity, 'warning')
  assert.deepEqual(run(await chain(make(', set: { requestTimeout: 10m }')), 'unbounded-wait'), [])
})

test('preset-pitfall: a setting the component ignores names the setting that works', async () => {
  const make = (set: string) => `${STREAM_5M}
hops:
  - { name: client, preset: curl }
  - { name: lb, preset: gcp-external-alb, set: { ${set} } }
  - { name: app, preset: uvicorn }
`
  const ignored = await chain(make('httpRouteTimeout: 300s'))
  const [f] = run(ignored, 'preset-pitfall')
  assert.equal(f?.severity, 'warning')
  assert.match(f.problem, /does not implement HTTPRoute/)
  assert.match(f.fix, /GCPBackendPolicy spec\.default\.timeoutSec/)
  assert.equal(ignored.hops[1]!.values.requestTimeout?.ms, 30_000, 'the ignored setting changes nothing')
  assert.deepEqual(run(await chain(make('requestTimeout: 3600s')), 'preset-pitfall'), [])
})

test('preset-pitfall: fixed values stay, caps apply, plan-bound settings are a note', async () => {
  const fixed = await chain(`${BATCH_5M}
hops:
  - { name: client, preset: curl }
  - { name: lb, preset: gcp-external-alb, set: { clientIdleTimeout: 30s } }
`)
  assert.match(run(fixed, 'preset-pitfall')[0]!.problem, /fixed at 10m/)
  assert.equal(fixed.hops[1]!.values.clientIdleTimeout?.ms, 600_000)
  const capped = await chain(`${BATCH_5M}
hops:
  - { name: client, preset: curl }
  - { name: afd, preset: azure-front-door, set: { requestTimeout: 10m } }
`)
  assert.equal(capped.hops[1]!.values.requestTimeout?.ms, 240_000)
  assert.match(run(capped, 'preset-pitfall')[0]!.problem, /caps originResponseTimeoutSeconds at 4m/)
  const plan = await chain(`${BATCH_5M}
hops:
  - { name: client, preset: curl }
  - { name: cf, preset: cloudflare, set: { streamIdleTimeout: 10m } }
`)
  assert.equal(run(plan, 'preset-pitfall')[0]!.severity, 'info')
})

test('a setting that moves others with it: the ALB idle timer is one attribute for three properties', async () => {
  const c = await chain(`${BATCH_5M}
hops:
  - { name: client, preset: curl }
  - { name: alb, preset: aws-alb, set: { streamIdleTimeout: 300s } }
`)
  const v = c.hops[1]!.values
  assert.deepEqual([v.streamIdleTimeout?.ms, v.serverIdleTimeout?.ms, v.clientIdleTimeout?.ms], [300_000, 300_000, 300_000])
})
