// The five stories of SCENARIOS.md, written as chain files in examples/chains/, produce the findings
// the stories describe; the clean chain produces none; a longhaul hop reads a real config file;
// the presets are the list, each value with its source.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { doctorReport, type Report } from '../src/doctor/report.ts'
import { PRESETS, findPreset } from '../src/doctor/presets.ts'
import { presetCounts } from '../src/doctor/report-presets.ts'
import { loadConfigFile } from '../src/config/load.ts'
import type { Finding } from '../src/doctor/model.ts'
import { ROOT } from './helpers/gateway.ts'

const CHAINS = join(ROOT, 'examples', 'chains')
const LONGHAUL_CONFIG = join(ROOT, 'examples', 'longhaul.yaml')
const dirs: string[] = []
after(async () => { await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))) })

function only (report: Report, rule: string, hops?: string[]): Finding[] {
  return report.findings.filter((f) => f.rule === rule && (hops === undefined || f.hops.join() === hops.join()))
}

test('story 1: the GKE load balancer cuts the chat stream at 30 s, and the HTTPRoute timeout did nothing', async () => {
  const report = await doctorReport(join(CHAINS, 'story-1-chat-cut-at-30s.yaml'))
  const [cut] = only(report, 'total-cut', ['gke-gateway'])
  assert.equal(cut?.severity, 'error')
  assert.equal(cut.cutAtMs, 30_000)
  assert.ok(cut.symptom.includes('curl: (92) HTTP/2 stream 1 was not closed cleanly: INTERNAL_ERROR (err 2)'), cut.symptom)
  assert.equal(report.cut, cut, 'the 30 s backend timeout is what cuts the request first')
  const [pitfall] = only(report, 'preset-pitfall', ['gke-gateway'])
  assert.equal(pitfall?.severity, 'warning')
  assert.match(pitfall.fix, /GCPBackendPolicy spec\.default\.timeoutSec/)
  assert.match(pitfall.symptom, /requestTimeout stays 30s/)
})

test('story 2: two idle timeouts that do not nest, and a client that waits exactly as long as its gateway', async () => {
  const report = await doctorReport(join(CHAINS, 'story-2-idle-timeouts-nest.yaml'))
  const [outer] = only(report, 'idle-nesting', ['client', 'eas-gateway'])
  assert.equal(outer?.severity, 'error')
  assert.match(outer.symptom, /Connection reset by peer/)
  assert.match(outer.symptom, /Broken pipe/)
  const [inner] = only(report, 'idle-nesting', ['eas-gateway', 'model'])
  assert.equal(inner?.severity, 'error')
  assert.match(inner.symptom, /503/)
  assert.match(inner.fix, /raise model's timeout_keep_alive/, 'the gateway side is fixed: only the model side can move')
  const [nesting] = only(report, 'timeout-nesting', ['client', 'eas-gateway'])
  assert.equal(nesting?.severity, 'warning')
  assert.match(nesting.fix, /601s-605s/)
})

test('story 3: a write timeout shorter than the work turns a finished answer into an empty reply', async () => {
  const report = await doctorReport(join(CHAINS, 'story-3-write-timeout.yaml'))
  const [f] = only(report, 'write-timeout', ['service'])
  assert.equal(f?.severity, 'error')
  assert.ok(f.symptom.includes('ConnectionError: (\'Connection aborted.\', BadStatusLine("\'\'",))'), f.symptom)
  assert.match(f.fix, /http\.TimeoutHandler/)
})

test('story 4: the Go proxy reuses connections the Node app closed, hangs without timeouts, and loses requests when pods go away', async () => {
  const report = await doctorReport(join(CHAINS, 'story-4-go-proxy-on-kubernetes.yaml'))
  assert.equal(only(report, 'idle-nesting', ['go-proxy', 'app'])[0]?.severity, 'error')
  assert.equal(only(report, 'unbounded-wait')[0]?.severity, 'warning')
  const [grace] = only(report, 'termination-grace', ['app'])
  assert.equal(grace?.severity, 'error')
  assert.equal(grace.values['deploy.terminationGracePeriod']?.ms, 30_000)
})

test('story 5: on Knative, the grace period leaves no room for the drain, and the app server keeps its 30 s graceful timeout', async () => {
  const report = await doctorReport(join(CHAINS, 'story-5-knative-rollout.yaml'))
  const grace = only(report, 'termination-grace')
  assert.equal(grace.length, 2)
  const pod = grace.find((f) => f.hops.join() === 'queue-proxy,app')!
  assert.equal(pod.values['deploy.terminationGracePeriod']?.ms, 300_000, 'Knative sets the pod grace to timeoutSeconds')
  assert.equal(pod.values['queue-proxy.drainDelay']?.ms, 30_000)
  assert.match(pod.symptom, /502 Bad Gateway/)
  assert.match(pod.symptom, /error reverse proxying request/)
  assert.equal(grace.find((f) => f.hops.join() === 'app')!.values['app.drainTimeout']?.ms, 30_000)
})

test('the clean chain (browser → raised cloud LB → longhaul with heartbeats → uvicorn) has no error', async () => {
  const report = await doctorReport(join(CHAINS, 'clean-chat.yaml'))
  assert.deepEqual(report.findings.filter((f) => f.severity === 'error'), [])
  assert.equal(report.cut, null)
})

test('a longhaul hop reads its route from a real config file, relative to the chain file', async () => {
  const report = await doctorReport(join(CHAINS, 'clean-chat.yaml'))
  const gateway = report.chain.hops.find((h) => h.name === 'gateway')!
  assert.equal(gateway.values.streamIdleTimeout?.origin, 'config')
  assert.deepEqual(
    [gateway.values.requestTimeout?.ms, gateway.values.firstByteTimeout?.ms, gateway.values.streamIdleTimeout?.ms, gateway.values.serverIdleTimeout?.ms, gateway.values.clientIdleTimeout?.ms, gateway.values.drainTimeout?.ms],
    [600_000, 120_000, 90_000, 620_000, 4000, 600_000])
  // Change the real config: the doctor follows it.
  const dir = await mkdtemp(join(tmpdir(), 'longhaul-doctor-'))
  dirs.push(dir)
  await mkdir(join(dir, 'chains'))
  await copyFile(join(CHAINS, 'clean-chat.yaml'), join(dir, 'chains', 'clean-chat.yaml'))
  const config = await readFile(LONGHAUL_CONFIG, 'utf8')
  await writeFile(join(dir, 'longhaul.yaml'), config.replace('streamIdle: 90s', 'streamIdle: 30s'))
  const changed = await doctorReport(join(dir, 'chains', 'clean-chat.yaml'))
  const [cut] = changed.findings.filter((f) => f.rule === 'silence-cut')
  assert.deepEqual(cut?.hops, ['gateway'])
  assert.match(cut.values['gateway.streamIdleTimeout']!.from, /config \.\.\/longhaul\.yaml: routes\[0\] \(chat\)\.timeouts\.streamIdle \[route\]/)
})

test('examples/longhaul.yaml is a valid longhaul config with no warnings', async () => {
  const { warnings } = await loadConfigFile(LONGHAUL_CONFIG)
  assert.deepEqual(warnings, [])
})

test('a longhaul config with an SSE heartbeat gives the hop its heartbeat', async () => {
  // examples/longhaul.yaml sets routes[0].sse.heartbeat: 15s; clean-chat.yaml does not set it.
  const report = await doctorReport(join(CHAINS, 'clean-chat.yaml'))
  const gateway = report.chain.hops.find((h) => h.name === 'gateway')!
  assert.equal(gateway.values.heartbeat?.ms, 15_000)
  assert.equal(gateway.values.heartbeat?.origin, 'config')
  assert.equal(report.findings.filter((f) => f.rule === 'dead-peer').length, 0)
  // Without it, the long silences of this workload are unprotected: the doctor says so.
  const dir = await mkdtemp(join(tmpdir(), 'longhaul-doctor-'))
  dirs.push(dir)
  await mkdir(join(dir, 'chains'))
  await copyFile(join(CHAINS, 'clean-chat.yaml'), join(dir, 'chains', 'clean-chat.yaml'))
  const config = await readFile(LONGHAUL_CONFIG, 'utf8')
  await writeFile(join(dir, 'longhaul.yaml'), config.replace(/\n {4}sse: \{ heartbeat: 15s \}[^\n]*/, ''))
  const without = await doctorReport(join(dir, 'chains', 'clean-chat.yaml'))
  assert.equal(without.chain.hops.find((h) => h.name === 'gateway')!.values.heartbeat, undefined)
  assert.ok(without.findings.some((f) => f.rule === 'dead-peer' || f.rule === 'silence-cut'), JSON.stringify(without.findings.map((f) => f.rule)))
})

test('the presets are the issue\'s list, each value with its source; unconfirmed values say so', () => {
  const wanted = ['curl', 'python-requests', 'httpx', 'go-http-client', 'node-fetch', 'axios', 'okhttp', 'java-httpclient', 'chrome', 'node-http-server', 'go-http-server', 'gunicorn', 'uvicorn', 'tomcat', 'spring-boot', 'nginx', 'ingress-nginx', 'haproxy', 'envoy', 'istio', 'traefik', 'caddy', 'gcp-external-alb', 'aws-alb', 'aws-nlb', 'aws-api-gateway', 'cloudflare', 'azure-app-gateway', 'azure-front-door', 'alibaba-eas-gateway', 'knative', 'longhaul',
    'heroku-router', 'vercel-functions', 'netlify-functions', 'openai-sdk', 'anthropic-sdk', 'azure-load-balancer', 'hypercorn',
    'envoy-ai-gateway', 'higress', 'litellm', 'kong', 'portkey']
  assert.deepEqual(wanted.filter((n) => findPreset(n) === undefined), [])
  for (const preset of PRESETS) {
    for (const [property, value] of Object.entries(preset.values)) {
      assert.ok(value.source.length > 10, `${preset.name}.${property} has a source`)
      assert.ok(value.setting.length > 0, `${preset.name}.${property} names its setting`)
    }
  }
  const { values, confirmed } = presetCounts()
  assert.ok(confirmed < values && confirmed > values * 0.75, `${confirmed} of ${values} confirmed`)
  assert.equal(findPreset('chrome')!.values.requestTimeout!.confirmed, false)
  assert.equal(findPreset('node-http-server')!.values.serverIdleTimeout!.ms, 5000)
  assert.match(findPreset('node-http-server')!.component, /Node 24/)
})
