// No false alarms (issue 14): for each rule, a correct chain stays silent (no finding of any rule),
// among them the three that used to cry wolf: a browser in front of a proxy, gunicorn with async
// workers, and an LLM SDK instead of a raw HTTP client. Chains are real chain files, loaded the
// way `longhaul doctor` loads them.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chain } from './helpers/chains.ts'
import { diagnose, RULES } from '../src/doctor/rules.ts'
import type { Chain } from '../src/doctor/model.ts'


/** Every finding, as `rule hops`, so a failure shows what spoke. */
async function findings (text: string): Promise<string[]> {
  return diagnose(await chain(text)).map((f) => `${f.rule} ${f.hops.join('+')}`)
}

test('a browser in front of a load balancer: its pooled sockets outlive the LB idle timeout, yet it resends, so no idle-nesting', async () => {
  const chrome = `workload: { duration: 20s, idleBetweenRequests: 10m }
hops:
  - { name: browser, preset: chrome }
  - { name: alb, preset: aws-alb }
  - { name: app, preset: node-http-server, set: { serverIdleTimeout: 65s } }
`
  assert.deepEqual(await findings(chrome), [])
  // The same pool in a program that does not resend is the race of story 2.
  const program = await findings(chrome.replace('preset: chrome', 'preset: java-httpclient'))
  assert.ok(program.includes('idle-nesting browser+alb'), program.join('\n'))
})

test('gunicorn: --timeout bounds a request for sync workers only; with uvicorn workers a long stream is fine', async () => {
  const make = (mode: string) => `workload: { duration: 2m, streaming: true, maxSilence: 5s }
hops:
  - { name: client, preset: openai-sdk }
  - { name: app, preset: gunicorn${mode}, set: { heartbeat: 2s${mode === '' ? '' : ', --keep-alive: 10s'} } }
`
  assert.deepEqual(await findings(make(', mode: uvicorn-worker')), [])
  assert.deepEqual(await findings(make(', mode: gthread')), [])
  const sync = await findings(make(''))
  assert.deepEqual(sync, ['total-cut app'], 'the default sync worker is killed at 30 s')
  // --keep-alive does nothing to sync workers: that is a finding, not a silent value.
  const [ignored] = RULES['preset-pitfall']!(await chain(make('').replace('heartbeat: 2s', 'heartbeat: 2s, --keep-alive: 10s')))
  assert.match(ignored!.problem, /--keep-alive: 10s } does nothing: in mode sync .*it does not apply/)
  // Sync workers close the connection after each response: no keep-alive race with a pooling proxy.
  const pooled = await chain(`workload: { duration: 1s }
hops:
  - { name: proxy, preset: go-http-client }
  - { name: app, preset: gunicorn }
`)
  assert.equal(pooled.hops[1]!.values.serverIdleTimeout, undefined)
  assert.deepEqual(RULES['idle-nesting']!(pooled), [])
})

test('an LLM call through the OpenAI SDK waits 600 s between bytes; raw httpx gives up after 5 s of thinking', async () => {
  const make = (client: string) => `workload: { duration: 3m, streaming: true, maxSilence: 40s, firstByte: 30s }
hops:
  - { name: client, preset: ${client} }
  - { name: gateway, preset: longhaul, set: { heartbeat: 15s } }
  - { name: model, preset: uvicorn }
`
  assert.deepEqual(await findings(make('openai-sdk')), [])
  assert.deepEqual(await findings(make('anthropic-sdk')), [])
  assert.deepEqual(await findings(make('httpx')), ['silence-cut client'])
})

test('Spring\'s 30 s async timeout does not apply to a synchronous endpoint; it does to an SSE stream', async () => {
  const make = (streaming: string) => `workload: { duration: 2m${streaming} }
hops:
  - { name: client, preset: python-requests, set: { requestTimeout: 3m } }
  - { name: app, preset: spring-boot }
`
  assert.deepEqual(await findings(make('')), [])
  assert.deepEqual(await findings(make(', streaming: true, maxSilence: 1s')), ['total-cut app'])
  assert.deepEqual(await findings(make('').replace('preset: spring-boot', 'preset: spring-boot, mode: async')), ['total-cut app'])
})

// One correct chain per rule: each is the fixed version of what the rule catches.
const CORRECT: Record<string, string> = {
  'idle-nesting': `workload: { duration: 10s }
hops:
  - { name: client, preset: go-http-client, set: { IdleConnTimeout: 50s, Client.Timeout: 1m } }
  - { name: alb, preset: aws-alb, set: { idle_timeout.timeout_seconds: 100s } }
  - { name: app, preset: node-http-server, set: { keepAliveTimeout: 120s } }`,
  'total-cut': `workload: { duration: 5m, streaming: true, maxSilence: 10s }
hops:
  - { name: client, preset: curl }
  - { name: lb, preset: gcp-external-alb, set: { timeoutSec: 1h } }
  - { name: gateway, preset: longhaul, set: { heartbeat: 5s } }
  - { name: app, preset: uvicorn }`,
  'silence-cut': `workload: { duration: 5m, streaming: true, maxSilence: 90s }
hops:
  - { name: browser, preset: chrome }
  - { name: nginx, preset: nginx, set: { proxy_read_timeout: 2m } }
  - { name: app, preset: uvicorn, set: { heartbeat: 15s } }`,
  'first-byte-cut': `workload: { duration: 2m, streaming: true, maxSilence: 5s, firstByte: 20s }
hops:
  - { name: client, preset: openai-sdk }
  - { name: heroku, preset: heroku-router }
  - { name: app, preset: uvicorn, set: { heartbeat: 10s } }`,
  'upload-cut': `workload: { duration: 2m, upload: { size: 100MiB, rate: 1MiB/s } }
hops:
  - { name: client, preset: curl, set: { requestTimeout: 5m } }
  - { name: traefik, preset: traefik, set: { readTimeout: 3m } }
  - { name: app, preset: node-http-server, set: { requestTimeout: none, keepAliveTimeout: 120s } }`,
  'timeout-nesting': `workload: { duration: 1m }
hops:
  - { name: client, preset: python-requests, set: { requestTimeout: 125s } }
  - { name: app, preset: gunicorn, set: { --timeout: 120s } }`,
  'write-timeout': `workload: { duration: 90s }
hops:
  - { name: client, preset: python-requests, set: { requestTimeout: 2m } }
  - { name: service, preset: go-http-server, set: { WriteTimeout: 100s } }`,
  'termination-grace': `workload: { duration: 4m }
hops:
  - { name: client, preset: python-requests, set: { requestTimeout: 5m } }
  - { name: app, preset: gunicorn, mode: gthread, set: { graceful_timeout: 5m } }
deploy: { terminationGracePeriod: 6m }`,
  'dead-peer': `workload: { duration: 5m, streaming: true, maxSilence: 40s }
hops:
  - { name: client, preset: anthropic-sdk }
  - { name: app, preset: uvicorn, set: { heartbeat: 15s, --timeout-keep-alive: 10s } }`,
  'unbounded-wait': `workload: { duration: 5m }
hops:
  - { name: client, preset: python-requests, set: { requestTimeout: 10m } }
  - { name: app, preset: uvicorn }`,
  'preset-pitfall': `workload: { duration: 5m, streaming: true, maxSilence: 10s }
hops:
  - { name: client, preset: curl }
  - { name: lb, preset: gcp-external-alb, set: { requestTimeout: 1h } }
  - { name: app, preset: uvicorn, set: { heartbeat: 5s, --timeout-keep-alive: 620s } }`
}

test('every rule has a correct chain that comes out clean', async () => {
  assert.deepEqual(Object.keys(CORRECT).sort(), Object.keys(RULES).sort(), 'one correct chain per rule')
  for (const [rule, text] of Object.entries(CORRECT)) {
    assert.deepEqual(await findings(text), [], `the correct chain for ${rule} is silent`)
  }
})
