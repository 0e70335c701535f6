// The fuller chain model of issue 14: the workload's upload, time to first byte and retries; preset
// modes; a component's own setting names in `set:`; pass-through hops and hops that hide a cut.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chain } from './helpers/chains.ts'
import { cutPoint, diagnose, RULES } from '../src/doctor/rules.ts'
import { timelineSvg } from '../src/doctor/timeline-svg.ts'
import { ConfigError } from '../src/config/diagnostics.ts'
import type { Chain } from '../src/doctor/model.ts'


async function errors (text: string): Promise<string[]> {
  try {
    await chain(text)
  } catch (err) {
    if (err instanceof ConfigError) return err.diagnostics.map((d) => `${d.line}:${d.col} ${d.path}: ${d.message}`)
    throw err
  }
  return []
}

test('first-byte-cut: a stream whose first token comes after Heroku\'s 30 s is cut before it starts; an early first byte passes', async () => {
  const make = (firstByte: string) => `workload: { duration: 2m, streaming: true, maxSilence: 5s, firstByte: ${firstByte} }
hops:
  - { name: client, preset: openai-sdk }
  - { name: heroku, preset: heroku-router }
  - { name: app, preset: uvicorn }
`
  const c = await chain(make('45s'))
  const [f] = RULES['first-byte-cut']!(c)
  assert.equal(f?.severity, 'error')
  assert.equal(f.cutAtMs, 30_000)
  assert.match(f.symptom, /H12/)
  assert.match(f.symptom, /client retries it 2 times .*preset openai-sdk/, 'the SDK retries a 503: three cuts')
  assert.match(f.fix, /cannot be changed/)
  assert.deepEqual(RULES['first-byte-cut']!(await chain(make('10s'))), [])
})

test('silence-cut: an idle timer that also waits for the headers sees the wait for the first token; heartbeats do not cover it', async () => {
  const make = (firstByte: string) => `workload: { duration: 5m, streaming: true, maxSilence: 10s, firstByte: ${firstByte} }
hops:
  - { name: client, preset: openai-sdk }
  - { name: kong, preset: kong }
  - { name: gateway, preset: longhaul, set: { heartbeat: 5s } }
  - { name: model, preset: uvicorn }
`
  const [f] = RULES['silence-cut']!(await chain(make('90s')))
  assert.deepEqual(f?.hops, ['kong'])
  assert.match(f.problem, /before its first byte/)
  assert.equal(f.values['workload.firstByte']?.ms, 90_000)
  assert.deepEqual(RULES['silence-cut']!(await chain(make('50s'))), [])
})

test('upload-cut: Traefik\'s 60 s readTimeout cuts a slow 100 MiB upload; a faster one or a raised limit passes', async () => {
  const make = (rate: string, set = '') => `workload: { duration: 10m, upload: { size: 100MiB, rate: ${rate} } }
hops:
  - { name: client, preset: curl }
  - { name: traefik, preset: traefik${set} }
  - { name: app, preset: uvicorn }
`
  const [f] = RULES['upload-cut']!(await chain(make('1MiB/s')))
  assert.equal(f?.severity, 'error')
  assert.equal(f.values['workload.upload']?.ms, 100_000)
  assert.equal(f.cutAtMs, 60_000)
  assert.match(f.fix, /readTimeout/)
  assert.deepEqual(RULES['upload-cut']!(await chain(make('2MiB/s'))), [])
  assert.deepEqual(RULES['upload-cut']!(await chain(make('1MiB/s', ', set: { readTimeout: 5m }'))), [])
  assert.deepEqual(await errors(make('1KiB/s')), ['1:36 workload.upload: the upload takes 102400s at that rate, longer than duration'])
  assert.match((await errors(make('fast')))[0]!, /invalid rate 'fast'/)
})

test('retries: the workload\'s own retries replace the client preset\'s; a cut mid-stream is not retried', async () => {
  const batch = await chain(`workload: { duration: 5m, retries: { count: 3, on: [504, timeout] } }
hops:
  - { name: client, preset: python-requests }
  - { name: envoy, preset: envoy }
  - { name: app, preset: uvicorn }
`)
  assert.equal(batch.workload.retries?.count, 3)
  const [f] = RULES['total-cut']!(batch)
  assert.match(f!.symptom, /retries it 3 times \(workload\.retries\): the user waits for 4 cuts/)
  const stream = await chain(`workload: { duration: 5m, streaming: true, maxSilence: 1s }
hops:
  - { name: client, preset: openai-sdk }
  - { name: envoy, preset: envoy }
  - { name: app, preset: uvicorn }
`)
  assert.doesNotMatch(RULES['total-cut']!(stream)[0]!.symptom, /retries/)
  assert.deepEqual((await errors(`workload: { duration: 1m, retries: { count: 1, on: [42] } }
hops: [{ name: a }, { name: b }]
`)), ['1:53 workload.retries.on[0]: a status (100-599), timeout (its own limit fired) or reset (the connection broke)'])
})

test('a hop that hides a cut: behind Portkey, a broken stream reaches the client as a clean end', async () => {
  const make = (gateway: string) => `workload: { duration: 5m, streaming: true, maxSilence: 1s }
hops:
  - { name: client, preset: curl }
  - ${gateway}
  - { name: envoy, preset: envoy }
  - { name: model, preset: uvicorn }
`
  const [cut] = RULES['total-cut']!(await chain(make('{ name: portkey, preset: portkey }')))
  assert.match(cut!.symptom, /client sees a clean end of the stream.*portkey turns the cut into that/)
  const own = RULES['total-cut']!(await chain(make('{ name: edge, symptom: "a 200 that ends early" }')))
  assert.match(own[0]!.symptom, /client sees a 200 that ends early \(edge turns/)
  const plain = RULES['total-cut']!(await chain(make('{ name: edge }')))
  assert.match(plain[0]!.symptom, /curl: \(92\)/)
})

test('passThrough: a hop without a preset can be a layer-4 hop; the pool in front of it meets the server behind it', async () => {
  const c = await chain(`workload: { duration: 1m }
hops:
  - { name: client, preset: go-http-client }
  - { name: l4, passThrough: true, set: { serverIdleTimeout: 4m } }
  - { name: app, preset: uvicorn }
`)
  assert.equal(c.hops[1]!.passThrough, true)
  assert.deepEqual(diagnose(c).filter((f) => f.rule === 'idle-nesting').map((f) => f.hops.join('+')), ['client+l4+app'])
})

test('set: takes the component\'s own names; modes change values; unknown names and modes are errors at their line', async () => {
  const c = await chain(`workload: { duration: 1m }
hops:
  - { name: client, preset: curl }
  - { name: nginx, preset: nginx, set: { proxy_read_timeout: 5m, keepalive_timeout: 10s } }
  - { name: lb, preset: gcp-external-alb, set: { timeoutSec: 20m } }
  - { name: app, preset: gunicorn, mode: uvicorn-worker, set: { requestTimeout: 10s } }
  - { name: app2, preset: gunicorn, mode: uvicorn-worker, set: { --timeout: 10s } }
`)
  assert.equal(c.hops[1]!.values.streamIdleTimeout?.ms, 300_000)
  assert.equal(c.hops[1]!.values.streamIdleTimeout?.setting, 'proxy_read_timeout = 5m')
  assert.equal(c.hops[1]!.values.serverIdleTimeout?.ms, 10_000)
  assert.equal(c.hops[2]!.values.requestTimeout?.ms, 1_200_000)
  assert.equal(c.hops[3]!.mode, 'uvicorn-worker')
  assert.equal(c.hops[3]!.values.requestTimeout?.ms, 10_000, 'a property the mode leaves out can still be set')
  assert.equal(c.hops[4]!.values.requestTimeout, undefined, '--timeout is only a heartbeat for uvicorn workers')
  assert.match(RULES['preset-pitfall']!(c)[0]!.problem, /app2: set: \{ --timeout: 10s \} does nothing: in mode uvicorn-worker/)
  assert.deepEqual(await errors(`workload: { duration: 1m }
hops:
  - { name: client, preset: curl }
  - { name: nginx, preset: nginx, set: { proxy_red_timeout: 5m } }
  - { name: app, preset: gunicorn, mode: asyncio }
  - { name: db, preset: uvicorn, mode: fast }
`), [
    "4:42 hops[1].set.proxy_red_timeout: unknown property 'proxy_red_timeout' (did you mean 'proxy_read_timeout'?) (a property, or one of nginx's settings: see --presets)",
    "5:42 hops[2].mode: unknown mode 'asyncio' (did you mean 'async'?) of gunicorn (modes: sync, gthread, async, uvicorn-worker)",
    '6:34 hops[3].mode: preset uvicorn has no modes'
  ])
})

test('the timeline draws the upload, the first byte and the limits that wait for it, and the retries after the cut', async () => {
  const c = await chain(`workload: { duration: 2m, streaming: true, maxSilence: 5s, firstByte: 45s, upload: { size: 10MiB, rate: 1MiB/s } }
hops:
  - { name: client, preset: openai-sdk }
  - { name: heroku, preset: heroku-router }
  - { name: traefik, preset: traefik, set: { readTimeout: 5s } }
  - { name: app, preset: uvicorn }
`)
  const findings = diagnose(c)
  const svg = timelineSvg(c, findings, cutPoint(findings))
  assert.match(svg, /upload 10s/)
  assert.match(svg, /first byte at 45s/)
  assert.match(svg, /<g data-hop="heroku" data-limit="firstByteTimeout"><rect [^>]*fill="#c62828"/, 'the 30 s first-byte limit is drawn as a cut')
  assert.match(svg, /<g data-hop="traefik" data-limit="uploadTimeout"><rect [^>]*fill="#c62828"/)
  assert.match(svg, /cut at 5s by traefik \(upload-cut\)/)
  const heroku = findings.find((f) => f.rule === 'first-byte-cut')!
  assert.equal(heroku.retries, 2)
  const only = await chain(`workload: { duration: 2m, streaming: true, maxSilence: 5s, firstByte: 45s }
hops:
  - { name: client, preset: openai-sdk }
  - { name: heroku, preset: heroku-router }
  - { name: app, preset: uvicorn }
`)
  const f2 = diagnose(only)
  assert.match(timelineSvg(only, f2, cutPoint(f2)), /cut at 30s by heroku \(first-byte-cut\), then 2 retries: 3 cuts/)
})
