// The doctor reads the real chain (issue 14): the SCENARIOS.md stories rebuilt from real files
// (Kubernetes manifests, container args, nginx.conf) give the findings their stories describe, with
// FILE:LINE provenance, and their fixed versions come out clean; each importer reads what it
// documents and turns a setting the component ignores into a finding.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { doctorReport, type Report } from '../src/doctor/report.ts'
import { diagnose } from '../src/doctor/rules.ts'
import { ConfigError } from '../src/config/diagnostics.ts'
import { chain, tempFiles } from './helpers/chains.ts'
import { ROOT } from './helpers/gateway.ts'
import type { Chain } from '../src/doctor/model.ts'

const CHAINS = join('examples', 'chains')
const at = (story: string, file: string, line: number): string => `${join(CHAINS, story, file)}:${line}`

/** Loads an example the way the CLI does, from the repository root (paths in reports are relative to it). */
async function example (path: string): Promise<Report> {
  const cwd = process.cwd()
  process.chdir(ROOT)
  try {
    return await doctorReport(join(CHAINS, path))
  } finally {
    process.chdir(cwd)
  }
}

const ONE_MINUTE = 'workload: { duration: 1m }\nhops:\n  - { name: client, preset: curl }\n'
const rules = (r: Report): string[] => r.findings.map((f) => `${f.severity} ${f.rule} ${f.hops.join('+')}`)

test('story 1 from its manifests: the GKE Gateway cuts at 30 s, the HTTPRoute timeout is GWCER104, each value at its FILE:LINE; fixed: clean', async () => {
  const report = await example('story-1/chain.yaml')
  assert.deepEqual(rules(report), ['error total-cut external', 'error idle-nesting external+chat', 'error termination-grace chat', 'warning preset-pitfall external'])
  assert.equal(report.cut?.cutAtMs, 30_000)
  const pitfall = report.findings.find((f) => f.rule === 'preset-pitfall')!
  assert.ok(pitfall.problem.includes(`HTTPRoute chat rules[0].timeouts.request: 300s (${at('story-1', 'k8s/gateway.yaml', 27)}) does nothing`), pitfall.problem)
  assert.match(pitfall.problem, /GWCER104: Timeouts are not supported/)
  assert.match(pitfall.fix, /GCPBackendPolicy/)
  const [lb, app] = [report.chain.hops[1]!, report.chain.hops[2]!]
  assert.equal(lb.from, at('story-1', 'k8s/gateway.yaml', 7))
  assert.deepEqual([app.preset?.name, app.from], ['uvicorn', at('story-1', 'k8s/chat.yaml', 24)])

  const fixed = await example('story-1/fixed/chain.yaml')
  assert.deepEqual(rules(fixed), [])
  const policy = fixed.chain.hops[1]!.values.requestTimeout!
  assert.deepEqual([policy.ms, policy.origin, policy.source], [3_600_000, 'file', at('story-1/fixed', 'k8s/gateway.yaml', 33)])
  assert.equal(fixed.chain.hops[2]!.values.serverIdleTimeout?.source, at('story-1/fixed', 'k8s/chat.yaml', 29))
  assert.match(fixed.chain.deploy!.graceFrom, /chat\.yaml:24: Deployment chat terminationGracePeriodSeconds: 330/)
})

test('story 2 with the model service from its Deployment: both idle pairs race, the client waits no longer than the gateway; fixed: clean', async () => {
  const report = await example('story-2/chain.yaml')
  assert.deepEqual(rules(report), ['error idle-nesting client+eas-gateway', 'error idle-nesting eas-gateway+model', 'warning timeout-nesting client+eas-gateway'])
  assert.match(report.findings[1]!.fix, /raise model's timeout_keep_alive/)
  assert.deepEqual(rules(await example('story-2/fixed/chain.yaml')), [])
})

test('story 4 with the Node app from its manifests: a stale pool, no bound, the default grace; fixed: clean', async () => {
  const report = await example('story-4/chain.yaml')
  assert.deepEqual(rules(report), ['error idle-nesting go-proxy+app', 'error termination-grace app', 'warning unbounded-wait client+go-proxy'])
  assert.equal(report.chain.hops[2]!.preset?.name, 'node-http-server', '`node server.js` is Node\'s http.Server')
  assert.deepEqual(rules(await example('story-4/fixed/chain.yaml')), [])
})

test('story 5 from the Knative Service: the grace period follows timeoutSeconds (at its line), gunicorn\'s 30 s drain; fixed: clean', async () => {
  const report = await example('story-5/chain.yaml')
  assert.deepEqual(rules(report), ['error termination-grace queue-proxy+batch', 'error termination-grace batch'])
  assert.match(report.chain.deploy!.graceFrom, new RegExp(`^${at('story-5', 'k8s/service.yaml', 10).replace(/[./]/g, '\\$&')}: Service batch spec\\.template\\.spec\\.timeoutSeconds: 300; knative`))
  assert.deepEqual([report.chain.hops[2]!.preset?.name, report.chain.hops[2]!.mode], ['gunicorn', 'sync'])
  assert.deepEqual(rules(await example('story-5/fixed/chain.yaml')), [])
  // A value the platform does not accept as written is checked like set: (Knative caps timeoutSeconds at 600 s).
  const over = await chain(`${ONE_MINUTE}  - from: ksvc.yaml\n`, { 'ksvc.yaml': 'apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: { name: s }\nspec:\n  template:\n    spec:\n      timeoutSeconds: 1800\n      containers: [{ name: c, command: [uvicorn] }]\n' })
  const [capped] = over.pitfalls
  assert.deepEqual([capped?.kind, capped?.where?.replace(/^.*\//, '')], ['capped', 'ksvc.yaml:7'])
  assert.match(capped!.what, /knative caps timeoutSeconds at 10m/)
})

test('nginx.conf: includes followed, the location the path takes, http-level values inherited, a pool that never pools; fixed: clean', async () => {
  const report = await example('nginx-llm/chain.yaml')
  assert.deepEqual(rules(report), ['error silence-cut nginx', 'warning preset-pitfall nginx'])
  const nginx = report.chain.hops[1]!
  assert.equal(nginx.from, at('nginx-llm', 'conf.d/site.conf', 6), 'location /v1/chat, from the included file')
  assert.equal(nginx.values.streamIdleTimeout?.source, at('nginx-llm', 'nginx.conf', 5))
  assert.match(report.findings[1]!.problem, /upstream model \{ keepalive 32 \} \(.*nginx\.conf:8\) does nothing: without proxy_http_version 1\.1/)
  assert.ok(report.findings[0]!.fix.startsWith(`raise nginx's proxy_read_timeout (${at('nginx-llm', 'nginx.conf', 5)}) above 90s; or have the app send the response headers and an SSE comment at once`), report.findings[0]!.fix)
  const fixed = await example('nginx-llm/fixed/chain.yaml')
  assert.deepEqual(rules(fixed), [])
  assert.equal(fixed.chain.hops[1]!.values.streamIdleTimeout?.source, at('nginx-llm/fixed', 'conf.d/site.conf', 11))
  assert.equal(fixed.chain.hops[1]!.values.clientIdleTimeout?.ms, 4000)
})

test('longhaul doctor --from: the hops of story 1 from its manifests on the command line, after the chain file\'s client', async () => {
  const run = (...args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> => new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'src', 'cli.ts'), 'doctor', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('exit', (code) => resolve({ code, stdout, stderr }))
  })
  const [bad, fixed, missing] = await Promise.all([
    run(join(CHAINS, 'story-1', 'workload.yaml'), '--from', join(CHAINS, 'story-1', 'k8s')),
    run(join(CHAINS, 'story-1', 'workload.yaml'), '--from', join(CHAINS, 'story-1', 'fixed', 'k8s')),
    run(join(CHAINS, 'story-1', 'workload.yaml'), '--from', 'no/such/dir')
  ])
  assert.equal(bad.code, 1)
  assert.match(bad.stdout, /^chain: curl → external → chat$/m)
  assert.ok(bad.stdout.includes(`(${at('story-1', 'k8s/gateway.yaml', 27)}) does nothing`), bad.stdout)
  assert.equal(fixed.code, 0, fixed.stdout)
  assert.match(fixed.stdout, /requestTimeout +1h +examples\/chains\/story-1\/fixed\/k8s\/gateway\.yaml:33: GCPBackendPolicy chat\s+spec\.default\.timeoutSec: 3600/)
  const html = await run(join(CHAINS, 'story-1', 'workload.yaml'), '--from', join(CHAINS, 'story-1', 'k8s'), '--format', 'html')
  assert.ok(html.stdout.includes(`read from ${at('story-1', 'k8s/gateway.yaml', 7)}`), 'the HTML report names the files too')
  assert.ok(html.stdout.includes(`(${at('story-1', 'k8s/gateway.yaml', 27)}) does nothing`))
  assert.equal(missing.code, 1)
  assert.equal(missing.stderr, 'no/such/dir:1:1 cannot import: file not found\n')
})

async function errors (text: string, files: Record<string, string> = {}): Promise<string[]> {
  try {
    await chain(text, files)
  } catch (err) {
    if (err instanceof ConfigError) return err.diagnostics.map((d) => `${d.line}:${d.col} ${d.path}: ${d.message}`)
    throw err
  }
  return []
}


test('ingress-nginx annotations: a number of seconds is read, "300s" is not (the default stays), and on a GKE Ingress they do nothing', async () => {
  const ingress = (cls: string, value: string): string => `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  annotations:
    nginx.ingress.kubernetes.io/proxy-read-timeout: "${value}"
spec:
  ingressClassName: ${cls}
  defaultBackend: { service: { name: web, port: { number: 80 } } }
`
  const nginx = await chain(`${ONE_MINUTE}  - from: ingress.yaml\n  - { name: app, preset: uvicorn }\n`, { 'ingress.yaml': ingress('nginx', '300') })
  assert.deepEqual([nginx.hops[1]!.preset?.name, nginx.hops[1]!.values.streamIdleTimeout?.ms], ['ingress-nginx', 300_000])
  assert.match(nginx.hops[1]!.values.streamIdleTimeout!.source!, /ingress\.yaml:6$/)
  const unit = await chain(`${ONE_MINUTE}  - from: ingress.yaml\n  - { name: app, preset: uvicorn }\n`, { 'ingress.yaml': ingress('nginx', '300s') })
  assert.equal(unit.hops[1]!.values.streamIdleTimeout?.ms, 60_000)
  assert.match(unit.pitfalls[0]!.what, /whole number of seconds: "300s" is not one/)
  const gce = await chain(`${ONE_MINUTE}  - from: ingress.yaml\n  - { name: app, preset: uvicorn }\n`, { 'ingress.yaml': ingress('gce', '300') })
  assert.equal(gce.hops[1]!.preset?.name, 'gcp-external-alb')
  assert.match(gce.pitfalls[0]!.what, /an ingress-nginx annotation on an Ingress of class gce/)
  // An ALB Ingress (AWS Load Balancer Controller): its idle timer, one attribute for both sides.
  const alb = await chain(`${ONE_MINUTE}  - from: ingress.yaml\n  - { name: app, preset: uvicorn }\n`, { 'ingress.yaml': `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  annotations:
    alb.ingress.kubernetes.io/load-balancer-attributes: idle_timeout.timeout_seconds=600,routing.http2.enabled=true
spec:
  ingressClassName: alb
  defaultBackend: { service: { name: web, port: { number: 80 } } }
` })
  const v = alb.hops[1]!.values
  assert.deepEqual([alb.hops[1]!.preset?.name, v.streamIdleTimeout?.ms, v.clientIdleTimeout?.ms], ['aws-alb', 600_000, 600_000])
  assert.match(v.streamIdleTimeout!.source!, /ingress\.yaml:6$/)
})

test('GKE Ingress with a BackendConfig, an Istio VirtualService, gunicorn worker classes from container args', async () => {
  const manifests = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: web }
spec:
  ingressClassName: gce
  defaultBackend: { service: { name: web, port: { number: 80 } } }
---
apiVersion: v1
kind: Service
metadata:
  name: web
  annotations: { cloud.google.com/backend-config: '{"default": "long"}' }
spec:
  selector: { app: web }
---
apiVersion: cloud.google.com/v1
kind: BackendConfig
metadata: { name: long }
spec:
  timeoutSec: 900
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web }
spec:
  hosts: [web]
  http:
    - timeout: 120s
      route: [{ destination: { host: web } }]
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  template:
    metadata: { labels: { app: web } }
    spec:
      containers:
        - name: web
          args: ["sh", "-c", "gunicorn -k uvicorn.workers.UvicornWorker --timeout 30 --keep-alive 75 app:app"]
`
  const c: Chain = await chain(`${ONE_MINUTE}  - from: k8s.yaml\n`, { 'k8s.yaml': manifests })
  assert.deepEqual(c.hops.map((h) => `${h.name}:${h.preset?.name ?? '-'}`), ['client:curl', 'web:gcp-external-alb', 'web-mesh:istio', 'web-app:gunicorn'], 'one name per hop, however the resources are named')
  assert.equal(c.hops[1]!.values.requestTimeout?.ms, 900_000)
  assert.equal(c.hops[2]!.values.requestTimeout?.ms, 120_000)
  const app = c.hops[3]!
  assert.equal(app.mode, 'uvicorn-worker')
  assert.equal(app.values.serverIdleTimeout?.ms, 75_000)
  assert.equal(app.values.requestTimeout, undefined, '--timeout is a heartbeat for uvicorn workers')
  assert.match(c.pitfalls.find((p) => p.key === '--timeout 30')!.what, /in mode uvicorn-worker/)
})

test('haproxy.cfg: timeouts from the frontend and its default_backend, falling back to defaults; milliseconds unless a unit', async () => {
  const cfg = `defaults
  mode http
  timeout connect 5000
  timeout client 1m
  timeout server 30s
frontend web
  bind :80
  timeout http-keep-alive 10s
  default_backend app
backend app
  timeout server 10m
  server a 10.0.0.5:8000
`
  const c = await chain(`${ONE_MINUTE}  - from: haproxy.cfg\n  - { name: app, preset: uvicorn }\n`, { 'haproxy.cfg': cfg })
  const v = c.hops[1]!.values
  assert.deepEqual([v.streamIdleTimeout?.ms, v.connectTimeout?.ms, v.serverIdleTimeout?.ms, v.headersTimeout?.ms], [600_000, 5000, 10_000, 60_000])
  assert.match(v.streamIdleTimeout!.source!, /haproxy\.cfg:11$/)
  assert.match(v.connectTimeout!.setting, /^defaults: timeout connect 5000$/)
})

test('Envoy bootstrap: the HCM stream idle timeout, the matching route\'s timeout (unset: 15 s), its cluster\'s connect and idle timeouts', async () => {
  const bootstrap = `static_resources:
  listeners:
    - name: http
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stream_idle_timeout: 600s
                route_config:
                  virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                        - match: { prefix: /v1/chat }
                          route: { cluster: model, timeout: 0s }
                        - match: { prefix: / }
                          route: { cluster: web }
  clusters:
    - name: model
      connect_timeout: 2s
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          common_http_protocol_options: { idle_timeout: 4s }
    - name: web
      connect_timeout: 1s
`
  const chat = await chain(`${ONE_MINUTE}  - { name: envoy, from: envoy.yaml, path: /v1/chat/completions }\n  - { name: app, preset: uvicorn }\n`, { 'envoy.yaml': bootstrap })
  const v = chat.hops[1]!.values
  assert.deepEqual([v.streamIdleTimeout?.ms, v.requestTimeout?.ms, v.connectTimeout?.ms, v.clientIdleTimeout?.ms], [600_000, null, 2000, 4000])
  assert.match(v.streamIdleTimeout!.source!, /envoy\.yaml:9$/)
  const web = await chain(`${ONE_MINUTE}  - { name: envoy, from: envoy.yaml, path: /index.html }\n  - { name: app, preset: uvicorn }\n`, { 'envoy.yaml': bootstrap })
  assert.deepEqual([web.hops[1]!.values.requestTimeout?.ms, web.hops[1]!.values.connectTimeout?.ms], [15_000, 1000])
  assert.match(web.hops[1]!.values.requestTimeout!.setting, /timeout unset \(default 15s\)/)
})

test('import problems are errors at the from: key, with the file\'s own FILE:LINE', async () => {
  const dir = await tempFiles()
  assert.deepEqual(await errors(`${ONE_MINUTE}  - from: ${join(dir, 'nope.conf')}\n`), [`4:5 hops[1].from: cannot import: ${join(dir, 'nope.conf')}: file not found`])
  const broken = await errors(`${ONE_MINUTE}  - from: nginx.conf\n  - { name: app, preset: uvicorn }\n`, { 'nginx.conf': 'http {\n  server {\n    proxy_read_timeout 60s\n  }\n}\n' })
  assert.match(broken[0]!, /^4:5 hops\[1\]\.from: cannot import: .*nginx\.conf:3: directive "proxy_read_timeout" has no ending ";"$/)
  const two = await errors(`${ONE_MINUTE}  - { name: edge, from: k8s.yaml }\n`, { 'k8s.yaml': 'apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: { name: s }\nspec: { template: { spec: { containers: [{ name: c, command: [uvicorn] }] } } }\n' })
  assert.deepEqual(two, ['4:7 hops[1].name: from: k8s.yaml describes 2 hops (queue-proxy, c): leave name: out to take them all'])
  const gateways = await errors(`${ONE_MINUTE}  - from: k8s.yaml\n`, { 'k8s.yaml': 'apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: { name: a }\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: { name: b }\n' })
  assert.match(gateways[0]!, /several entry points \(Ingress a, Ingress b\): give the files of one request path/)
  // The whole report names the file of every imported value.
  const c = await chain(`${ONE_MINUTE}  - from: haproxy.cfg\n  - { name: app, preset: uvicorn }\n`, { 'haproxy.cfg': 'frontend web\n  timeout client 30s\n  default_backend app\nbackend app\n  timeout server 20s\n' })
  const [cut] = diagnose(c).filter((f) => f.rule === 'silence-cut')
  assert.match(cut!.values['haproxy.streamIdleTimeout']!.from, /haproxy\.cfg:5: backend app: timeout server 20s$/)
})

test('what `longhaul render kubernetes` writes reads back as a chain: the policy in front, longhaul from its ConfigMap; a value changed by hand is caught at its line', async () => {
  const dir = await tempFiles({
    'longhaul.yaml': `listen:
  - address: 0.0.0.0:8080
admin:
  address: 0.0.0.0:9901
upstreams:
  model: { endpoints: [http://model.default.svc:8000] }
routes:
  - name: chat
    match: { pathPrefix: /v1/chat }
    upstream: model
    timeouts: { firstByte: 2m, streamIdle: 90s, request: 10m }
    sse: { heartbeat: 15s }
`,
    'workload.yaml': 'workload: { name: chat, duration: 5m, streaming: true, maxSilence: 40s }\nhops:\n  - { name: browser, preset: chrome }\n'
  })
  const cli = (...args: string[]): Promise<{ code: number | null, stdout: string }> => new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'src', 'cli.ts'), ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] })
    let stdout = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.on('exit', (code) => resolve({ code, stdout }))
  })
  for (const lb of ['gke-gateway', 'aws-alb']) {
    assert.equal((await cli('render', 'kubernetes', '--config', 'longhaul.yaml', '--lb', lb, '--out', lb)).code, 0)
  }
  const [gke, alb] = await Promise.all([cli('doctor', 'workload.yaml', '--from', 'gke-gateway'), cli('doctor', 'workload.yaml', '--from', 'aws-alb')])
  assert.equal(gke.code, 0, gke.stdout)
  assert.match(gke.stdout, /^chain: browser → load-balancer → longhaul$/m)
  assert.match(gke.stdout, /requestTimeout +605s +gke-gateway\/gcpbackendpolicy\.yaml:\d+: GCPBackendPolicy longhaul/)
  assert.match(gke.stdout, /streamIdleTimeout +90s +gke-gateway\/configmap\.yaml:\d+: ConfigMap longhaul-config\s+data\.longhaul\.yaml: routes\[0\] \(chat\)\.timeouts\.streamIdle/)
  assert.equal(alb.code, 0, alb.stdout)
  assert.match(alb.stdout, /^longhaul \(aws-alb\), read from aws-alb\/ingress\.yaml:\d+$/m)
  // Someone lowers the policy's timeout by hand: the doctor points at the line.
  const policy = join(dir, 'gke-gateway', 'gcpbackendpolicy.yaml')
  await writeFile(policy, (await readFile(policy, 'utf8')).replace(/timeoutSec: \d+/, 'timeoutSec: 30'))
  const changed = await cli('doctor', 'workload.yaml', '--from', 'gke-gateway')
  assert.equal(changed.code, 1)
  assert.match(changed.stdout, /ERROR +total-cut · load-balancer/)
  assert.match(changed.stdout, /load-balancer\.requestTimeout = 30s \(gke-gateway\/gcpbackendpolicy\.yaml:\d+:\s+GCPBackendPolicy/)
})

test('the README\'s `doctor --from` example is what the command prints (its lines, in order; … elides)', async () => {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
  const block = /```\n\$ (longhaul doctor examples\/chains\/story-1\/workload\.yaml --from [^\n]+)\n([\s\S]*?)```/.exec(readme)
  assert.ok(block !== null, 'README: the doctor --from example')
  const args = block[1]!.split(' ').slice(2)
  const out = await new Promise<string>((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'src', 'cli.ts'), 'doctor', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
    let stdout = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.on('exit', () => resolve(stdout))
  })
  const lines = out.split('\n')
  let from = 0
  for (const shown of block[2]!.trimEnd().split('\n').filter((l) => l !== '…')) {
    // A line that ends in … is cut short in the README.
    const at = lines.findIndex((l, i) => i >= from && (shown.endsWith('…)') ? l.startsWith(shown.slice(0, -2)) : l === shown))
    assert.ok(at >= 0, `README line not in the output (or out of order): ${shown}\n${out}`)
    from = at + 1
  }
})

test('every importer names what it cannot read, at the file\'s own line', async () => {
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['nginx.conf', { 'nginx.conf': 'http {\n  server {\n    return 200 "unterminated;\n  }\n}\n' }, /nginx\.conf:3: unterminated quoted string$/],
    ['nginx.conf', { 'nginx.conf': 'http {\n  include missing.conf;\n}\n' }, /nginx\.conf:2: include missing\.conf: file not found$/],
    ['nginx.conf', { 'nginx.conf': 'http {\n  include nginx.conf;\n  server { listen 80; }\n}\n' }, /nginx\.conf: include cycle$/],
    ['nginx.conf', { 'nginx.conf': 'http {\n  server {\n    listen 80;\n' }, /nginx\.conf:3: unexpected end of file: a "\}" is missing$/],
    ['haproxy.cfg', { 'haproxy.cfg': 'defaults\n  timeout server 30s\nbackend app\n  server a 10.0.0.5:80\n' }, /haproxy\.cfg: no frontend or listen section$/],
    ['envoy.yaml', { 'envoy.yaml': 'static_resources:\n  clusters:\n    - name: a\n      connect_timeout: 1s\n' }, /envoy\.yaml: no HTTP connection manager found$/],
    ['k8s.yaml', { 'k8s.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\ndata: { a: b }\n' }, /no request path found: expected a Gateway and HTTPRoute, an Ingress, a Knative Service, or a Deployment$/],
    ['k8s.yaml', { 'k8s.yaml': 'apiVersion: v1\nkind: Service\nmetadata: { name: x\n' }, /k8s\.yaml:\d+: /],
    ['notes.txt', { 'notes.txt': 'hello\n' }, /notes\.txt: not a file the doctor reads: Kubernetes manifests, nginx\.conf, HAProxy cfg, an Envoy bootstrap or config dump$/],
    ['k8s.yaml', {
      'k8s.yaml': `apiVersion: v1
kind: ConfigMap
metadata: { name: cfg }
data:
  longhaul.yaml: |
    routes: []
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: gw }
spec:
  template:
    spec:
      containers:
        - { name: gw, image: longhaul:1.0, args: [--config, /etc/longhaul/longhaul.yaml], volumeMounts: [{ name: c, mountPath: /etc/longhaul }] }
      volumes: [{ name: c, configMap: { name: cfg } }]
`
    }, /k8s\.yaml:5: ConfigMap cfg data\.longhaul\.yaml is not a valid longhaul config: /]
  ]
  for (const [from, files, expected] of cases) {
    const found = await errors(`${ONE_MINUTE}  - from: ${from}\n`, files)
    assert.equal(found.length, 1, `${from}: ${found.join('\n')}`)
    assert.match(found[0]!, /^4:5 hops\[1\]\.from: cannot import: /)
    assert.match(found[0]!, expected)
  }
})

test('HTTPRoute timeouts where the controller implements them (Envoy Gateway, Istio) set the route timeout; the path picks the rule', async () => {
  const route = (className: string): string => `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: edge }
spec: { gatewayClassName: ${className} }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: r }
spec:
  parentRefs: [{ name: edge }]
  rules:
    - matches: [{ path: { type: PathPrefix, value: /v1/chat } }]
      backendRefs: [{ name: chat }]
      timeouts: { request: 10m }
    - matches: [{ path: { type: PathPrefix, value: / } }]
      backendRefs: [{ name: web }]
`
  const chat = await chain(`${ONE_MINUTE}  - { from: gw.yaml, path: /v1/chat/completions }\n  - { name: app, preset: uvicorn }\n`, { 'gw.yaml': route('eg') })
  assert.deepEqual([chat.hops[1]!.preset?.name, chat.hops[1]!.values.requestTimeout?.ms], ['envoy', 600_000])
  assert.match(chat.hops[1]!.values.requestTimeout!.source!, /gw\.yaml:14$/)
  const web = await chain(`${ONE_MINUTE}  - { from: gw.yaml, path: /index.html }\n  - { name: app, preset: uvicorn }\n`, { 'gw.yaml': route('istio') })
  assert.deepEqual([web.hops[1]!.preset?.name, web.hops[1]!.values.requestTimeout?.origin], ['istio', 'preset'], 'the / rule sets no timeout: the preset\'s stays')
  assert.deepEqual(web.pitfalls, [])
})

test('HTTPRoute and VirtualService timeouts in Go duration syntax (1m30s, 1h30m, 1.5s) are read; one that is no duration is a finding at its line', async () => {
  const manifests = (request: string, mesh: string): string => `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: edge }
spec: { gatewayClassName: eg }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: r }
spec:
  parentRefs: [{ name: edge }]
  rules:
    - backendRefs: [{ name: chat }]
      timeouts: { request: ${request} }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: chat }
spec:
  hosts: [chat]
  http:
    - timeout: ${mesh}
      route: [{ destination: { host: chat } }]
`
  const read = async (request: string, mesh: string): Promise<Chain> => await chain(`${ONE_MINUTE}  - from: k8s.yaml\n  - { name: app, preset: uvicorn }\n`, { 'k8s.yaml': manifests(request, mesh) })
  for (const [request, mesh, requestMs, meshMs] of [['1m30s', '1h30m', 90_000, 5_400_000], ['1h30m30s500ms', '1.5s', 5_430_500, 1500], ['300s', '2m0s', 300_000, 120_000]] as const) {
    const c = await read(request, mesh)
    assert.deepEqual(c.hops.slice(1, 3).map((h) => h.values.requestTimeout?.ms), [requestMs, meshMs], `${request}, ${mesh}`)
    assert.deepEqual(c.pitfalls, [])
  }
  const c = await read('90 seconds', '1d')
  assert.deepEqual(c.hops.slice(1, 3).map((h) => h.values.requestTimeout?.origin), ['preset', 'preset'], 'nothing is read from a value that is no duration')
  const report = diagnose(c)
  const problems = report.filter((f) => f.rule === 'preset-pitfall').map((f) => f.problem)
  assert.equal(problems.length, 2, problems.join('\n'))
  assert.match(problems[0]!, /HTTPRoute r rules\[0\]\.timeouts\.request: 90 seconds \(\S+k8s\.yaml:13\) does nothing: "90 seconds" is not a duration/)
  assert.match(problems[1]!, /VirtualService chat http\[0\]\.timeout: 1d \(\S+k8s\.yaml:21\) does nothing: "1d" is not a duration/)
})

test('--from without a chain file is a usage error that says what to give', async () => {
  const r = await new Promise<{ code: number | null, stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'src', 'cli.ts'), 'doctor', '--from', join(CHAINS, 'story-1', 'k8s')], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('exit', (code) => resolve({ code, stderr }))
  })
  assert.equal(r.code, 2)
  assert.match(r.stderr, /--from needs a chain file for the workload \(it may hold only workload: and the client hop\)/)
})
