// `longhaul render kubernetes`: the manifests validate against the Kubernetes API schemas (and
// GKE's CRDs), agree with the config (grace period, probes, ports, the mounted config), and each
// load balancer's timeout is derived from the config's limits. The doctor finds nothing to fix in
// the chain render writes, and says so when a rendered value no longer fits.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { parseAllDocuments, parse } from 'yaml'
import { ConfigMap, Service } from 'kubernetes-models/v1'
import { Deployment } from 'kubernetes-models/apps/v1'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1'
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1'
import { GCPBackendPolicy, HealthCheckPolicy } from '@kubernetes-models/gke/networking.gke.io/v1'
import { BackendConfig } from '@kubernetes-models/gke/cloud.google.com/v1'
import { renderKubernetes, type Rendered } from '../src/deploy/render.ts'
import { LOAD_BALANCERS, type LoadBalancer } from '../src/deploy/load-balancers.ts'
import { parseConfigText } from '../src/config/load.ts'
import { ConfigError } from '../src/config/diagnostics.ts'
import { runCli, writeConfig } from './helpers/gateway.ts'
import { makeTestCertificate } from './helpers/tls.ts'

// The models validate against the published OpenAPI schemas (types, required fields, enums).
const MODELS: Record<string, new (data: any) => { validate: () => void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/Ingress': Ingress,
  'networking.gke.io/v1/GCPBackendPolicy': GCPBackendPolicy,
  'networking.gke.io/v1/HealthCheckPolicy': HealthCheckPolicy,
  'cloud.google.com/v1/BackendConfig': BackendConfig
}

const MINIMAL = `
listen: [{ address: 0.0.0.0:8080 }]
admin: { address: 0.0.0.0:9901 }
upstreams: { app: { endpoints: [http://10.0.0.5:8000] } }
routes: [{ name: all, upstream: app }]
`
// Two listeners (HTTP/1.1 and h2c), a chat route whose client may extend it, a batch route whose
// first byte comes late, a long drain and a long keep-alive.
const LONG = `
listen:
  - address: 0.0.0.0:8080
  - address: "[::]:8081"
    protocol: h2c
admin: { address: 0.0.0.0:9100 }
downstream: { idleTimeout: 4000s, bodyIdleTimeout: 2m, maxBodySize: 1GiB }
upstreams: { chat: { endpoints: [http://10.0.0.5:8000] } }
routes:
  - name: chat
    match: { pathPrefix: /v1/chat }
    upstream: chat
    timeouts: { request: 15m, maxClientTimeout: 40m, streamIdle: 90s, firstByte: 2m }
  - name: batch
    upstream: chat
    timeouts: { request: 30m, firstByte: 25m, streamIdle: 1m }
drain: { delay: 10s, timeout: 30m }
workers: 2
`

function render (text: string, lb?: LoadBalancer): Rendered {
  return renderKubernetes(text, 'longhaul.yaml', { lb, name: 'gw', image: 'longhaul:test', replicas: 3 })
}

function byKind (rendered: Rendered, kind: string): any {
  const m = rendered.manifests.find((x) => x.object.kind === kind)
  assert.ok(m !== undefined, `no ${kind} rendered`)
  return m.object
}

test('every rendered object validates against its Kubernetes API (or GKE CRD) schema, for each config and load balancer', () => {
  for (const text of [MINIMAL, LONG]) {
    for (const lb of [undefined, ...LOAD_BALANCERS]) {
      const rendered = render(text, lb)
      for (const m of rendered.manifests) {
        const Model = MODELS[`${m.object.apiVersion as string}/${m.object.kind as string}`]
        assert.ok(Model !== undefined, `no schema for ${m.object.apiVersion as string} ${m.object.kind as string}`)
        new Model(m.object).validate()
      }
    }
  }
})

test('a schema violation is caught by the validation the test relies on', () => {
  const deployment = structuredClone(byKind(render(MINIMAL), 'Deployment'))
  deployment.spec.template.spec.containers[0].ports[0].containerPort = '8080'
  assert.throws(() => new Deployment(deployment).validate(), /containerPort must be integer/)
})

test('the Deployment agrees with the config: grace period, probes on the admin port, ports, CPU, the mounted config', () => {
  const rendered = render(LONG)
  const deployment = byKind(rendered, 'Deployment')
  const pod = deployment.spec.template.spec
  // drain.delay 10s + drain.timeout 30m + 10 s margin
  assert.equal(pod.terminationGracePeriodSeconds, 10 + 1800 + 10)
  const [container] = pod.containers
  assert.deepEqual(container.ports.map((p: any) => [p.name, p.containerPort]), [['http', 8080], ['h2c', 8081], ['admin', 9100]])
  assert.deepEqual(container.readinessProbe.httpGet, { path: '/readyz', port: 'admin' })
  assert.deepEqual(container.livenessProbe.httpGet, { path: '/healthz', port: 'admin' })
  // One CPU per worker (workers: 2); with workers: auto, --cpus sizes the pod (2 by default).
  assert.deepEqual(container.resources, { requests: { cpu: '2' }, limits: { cpu: '2' } })
  assert.deepEqual(byKind(render(MINIMAL), 'Deployment').spec.template.spec.containers[0].resources.limits, { cpu: '1' })
  const auto = (cpus?: number): unknown => byKind(renderKubernetes(MINIMAL + 'workers: auto\n', 'f', { name: 'gw', image: 'i', replicas: 1, cpus }), 'Deployment').spec.template.spec.containers[0].resources.limits
  assert.deepEqual(auto(), { cpu: '2' })
  assert.deepEqual(auto(4), { cpu: '4' })
  assert.equal(deployment.spec.replicas, 3)
  assert.equal(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0)
  assert.equal(container.image, 'longhaul:test')
  assert.deepEqual(container.args, ['--config', '/etc/longhaul/longhaul.yaml', '--watch'])
  // The whole directory is mounted (a subPath never sees a ConfigMap update), holding the config verbatim.
  assert.deepEqual(container.volumeMounts, [{ name: 'config', mountPath: '/etc/longhaul', readOnly: true }])
  const configMap = byKind(rendered, 'ConfigMap')
  assert.deepEqual(pod.volumes, [{ name: 'config', projected: { sources: [{ configMap: { name: configMap.metadata.name } }] } }])
  assert.equal(configMap.data['longhaul.yaml'], LONG)
  assert.equal(parseConfigText(configMap.data['longhaul.yaml'], 'cm').config.routes.length, 2)

  const service = byKind(rendered, 'Service')
  assert.deepEqual(service.spec.ports.map((p: any) => [p.name, p.port, p.targetPort, p.appProtocol]), [['http', 8080, 'http', undefined], ['h2c', 8081, 'h2c', 'kubernetes.io/h2c']])
  assert.deepEqual(service.spec.selector, deployment.spec.template.metadata.labels)
  const pdb = byKind(rendered, 'PodDisruptionBudget')
  assert.deepEqual(pdb.spec.selector.matchLabels, deployment.spec.template.metadata.labels)
  assert.equal(pdb.spec.maxUnavailable, 1)
})

test('GKE Gateway: GCPBackendPolicy timeoutSec covers the longest request a client may extend to, never an HTTPRoute timeout', () => {
  const rendered = render(LONG, 'gke-gateway')
  const policy = byKind(rendered, 'GCPBackendPolicy')
  // chat's maxClientTimeout 40m is the longest request + 5 s margin.
  assert.equal(policy.spec.default.timeoutSec, 2400 + 5)
  assert.equal(policy.spec.default.connectionDraining.drainingTimeoutSec, 1810)
  assert.deepEqual(policy.spec.targetRef, { group: '', kind: 'Service', name: 'gw' })
  assert.equal(byKind(rendered, 'HealthCheckPolicy').spec.default.config.httpHealthCheck.port, 9100)
  assert.ok(!rendered.manifests.some((m) => m.object.kind === 'HTTPRoute'))
  assert.equal(byKind(render(MINIMAL, 'gke-gateway'), 'GCPBackendPolicy').spec.default.timeoutSec, 600 + 5)
})

test('GKE Ingress: BackendConfig timeoutSec from the longest request, attached through the Service annotation', () => {
  const rendered = render(LONG, 'gke-ingress')
  const backend = byKind(rendered, 'BackendConfig')
  assert.equal(backend.spec.timeoutSec, 2405)
  assert.deepEqual(backend.spec.healthCheck, { type: 'HTTP', requestPath: '/readyz', port: 9100 })
  const service = byKind(rendered, 'Service')
  assert.deepEqual(JSON.parse(service.metadata.annotations['cloud.google.com/backend-config']), { default: 'gw' })
})

test('AWS ALB: the idle timeout covers the longest silence and stays below downstream.idleTimeout', () => {
  const ingress = byKind(render(LONG, 'aws-alb'), 'Ingress')
  const a = ingress.metadata.annotations
  // batch's firstByte 25m is the longest silence (waiting for its headers) + 5 s.
  assert.equal(a['alb.ingress.kubernetes.io/load-balancer-attributes'], 'idle_timeout.timeout_seconds=1505')
  assert.equal(a['alb.ingress.kubernetes.io/target-group-attributes'], 'deregistration_delay.timeout_seconds=1810')
  assert.equal(a['alb.ingress.kubernetes.io/healthcheck-port'], '9100')
  assert.equal(ingress.spec.defaultBackend.service.port.name, 'http')
})

test('ingress-nginx: read and send timeouts cover the longest silence; the body size follows maxBodySize', () => {
  const a = byKind(render(LONG, 'ingress-nginx'), 'Ingress').metadata.annotations
  assert.equal(a['nginx.ingress.kubernetes.io/proxy-read-timeout'], '1505')
  assert.equal(a['nginx.ingress.kubernetes.io/proxy-send-timeout'], '1505')
  assert.equal(a['nginx.ingress.kubernetes.io/proxy-body-size'], `${1024 * 1024}k`)
  // The default config: firstByte follows request (10m), the longest silence.
  assert.equal(byKind(render(MINIMAL, 'ingress-nginx'), 'Ingress').metadata.annotations['nginx.ingress.kubernetes.io/proxy-read-timeout'], '605')
})

test('a load balancer keep-alive that would outlast downstream.idleTimeout is a warning at that key', () => {
  const text = MINIMAL + 'downstream:\n  idleTimeout: 300s\n'
  for (const lb of ['aws-alb', 'gke-gateway'] as const) {
    const [w] = render(text, lb).warnings
    assert.ok(w !== undefined, lb)
    assert.equal(w.path, 'downstream.idleTimeout')
    assert.equal(w.line, 7)
    assert.match(w.message, /raise it above/)
  }
  assert.deepEqual(render(MINIMAL, 'aws-alb').warnings, [])
})

test('a route the doctor cannot reach by its path (an earlier route takes it first) gets no chain, and a warning says so', () => {
  const text = MINIMAL.replace('routes: [{ name: all, upstream: app }]', 'routes:\n  - { name: all, upstream: app }\n  - { name: chat, upstream: app, match: { pathPrefix: /v1/chat } }')
  const rendered = render(text)
  assert.deepEqual(rendered.chains.map((c) => c.file), ['all.yaml'])
  const warning = rendered.warnings.find((w) => w.message.startsWith('no doctor chain'))
  assert.match(warning?.message ?? '', /^no doctor chain for chat: an earlier route takes its path prefix first/)
  assert.equal(warning?.path, 'routes')
})

test('a config a pod cannot run is refused at its keys: loopback admin, port 0, TLS files outside the config directory', (t) => {
  const certificate = makeTestCertificate()
  t.after(certificate.remove)
  const text = `
listen:
  - address: 127.0.0.1:0
  - address: 0.0.0.0:8443
    tls: { cert: ${certificate.certPath}, key: ${certificate.keyPath} }
admin: { address: 127.0.0.1:9901 }
upstreams: { app: { endpoints: [http://10.0.0.5:8000] } }
routes: [{ name: all, upstream: app }]
`
  let err: unknown
  try { render(text) } catch (e) { err = e }
  assert.ok(err instanceof ConfigError)
  const messages = err.diagnostics.map((d) => `${d.line}:${d.col} ${d.path}: ${d.message}`)
  assert.equal(messages.length, 5, messages.join('\n'))
  assert.match(messages[0]!, /^3:5 listen\[0\]\.address: port 0/)
  assert.match(messages[1]!, /^3:5 listen\[0\]\.address: 127\.0\.0\.1 is not reachable/)
  assert.match(messages[2]!, /^5:12 listen\[1\]\.tls\.cert: \/.*cert\.pem is outside the config's directory: .*relative to the config file/)
  assert.match(messages[3]!, /^5:\d+ listen\[1\]\.tls\.key: \/.*key\.pem is outside the config's directory/)
  assert.match(messages[4]!, /^6:10 admin\.address: 127\.0\.0\.1 is not reachable .*probes/)
})

test('a TLS listener: its certificate and key are projected from a kubernetes.io/tls Secret beside the config, where the config names them', async (t) => {
  const certificate = makeTestCertificate()
  t.after(certificate.remove)
  const file = join(certificate.dir, 'longhaul.yaml')
  const text = MINIMAL.replace('listen: [{ address: 0.0.0.0:8080 }]', `listen:
  - address: 0.0.0.0:8443
    tls: { cert: ./cert.pem, key: key.pem }
  - address: 0.0.0.0:9443
    tls: { cert: cert.pem, key: key.pem }`)
  const rendered = renderKubernetes(text, file, { name: 'gw', image: 'longhaul:test', replicas: 1 })
  for (const m of rendered.manifests) new MODELS[`${m.object.apiVersion as string}/${m.object.kind as string}`]!(m.object).validate()
  const pod = byKind(rendered, 'Deployment').spec.template.spec
  // One directory: the ConfigMap and the one Secret both listeners share, at the paths the config names.
  assert.deepEqual(pod.volumes, [{
    name: 'config',
    projected: {
      sources: [
        { configMap: { name: 'gw-config' } },
        { secret: { name: 'gw-tls', items: [{ key: 'tls.crt', path: 'cert.pem' }, { key: 'tls.key', path: 'key.pem' }] } }
      ]
    }
  }])
  assert.deepEqual(pod.containers[0].volumeMounts, [{ name: 'config', mountPath: '/etc/longhaul', readOnly: true }])
  assert.deepEqual(pod.containers[0].ports.map((p: any) => [p.name, p.containerPort]), [['https', 8443], ['https-2', 9443], ['admin', 9901]])
  // The Secret is the user's to create: render says so, at the listener that needs it.
  const secret = rendered.warnings.filter((w) => w.message.includes('Secret'))
  assert.equal(secret.length, 1)
  assert.equal(secret[0]!.path, 'listen[0].tls')
  assert.match(secret[0]!.message, /reads \/etc\/longhaul\/cert\.pem and \/etc\/longhaul\/key\.pem from Secret gw-tls.*kubectl create secret tls gw-tls --cert=CERT --key=KEY/)

  // A path that climbs out of the config's directory is refused at its key.
  let err: unknown
  try { renderKubernetes(text.replace('key: key.pem }', `key: ../${certificate.dir.split('/').pop()!}/key.pem }`), file, { name: 'gw', image: 'i', replicas: 1 }) } catch (e) { err = e }
  assert.ok(err instanceof ConfigError)
  assert.deepEqual(err.diagnostics.map((d) => d.path), ['listen[0].tls.key'])

  // The doctor reads the rendered Deployment's projected config (its certificates are in the pod, not here).
  await writeFile(file, text)
  const out = join(certificate.dir, 'k8s')
  const rendered2 = await runCli(['render', 'kubernetes', '--config', file, '--out', out, '--lb', 'gke-gateway'])
  assert.equal(rendered2.code, 0, rendered2.stderr)
  assert.match(rendered2.stderr, /Secret longhaul-tls/)
  const doctor = await runCli(['doctor', join(out, 'doctor', 'all.yaml'), '--format', 'json'])
  assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr)
  assert.match(doctor.stdout, /ConfigMap longhaul-config data\.longhaul\.yaml/)
})

test('the CLI: stdout is one stream of documents; errors exit 1 with FILE:LINE:COL; usage errors exit 2', async () => {
  const { path } = await writeConfig(MINIMAL)
  const out = await runCli(['render', 'kubernetes', '--config', path, '--lb', 'aws-alb'])
  assert.equal(out.code, 0, out.stderr)
  assert.deepEqual(parseAllDocuments(out.stdout).map((d) => (d.toJS() as { kind: string }).kind), ['ConfigMap', 'Deployment', 'Service', 'PodDisruptionBudget', 'Ingress'])
  assert.match(out.stdout, /# idle_timeout\.timeout_seconds=605: longhaul's longest limit \(route all: firstByte 10m/)

  const bad = await writeConfig(MINIMAL.replace('0.0.0.0:9901', '127.0.0.1:9901'))
  const refused = await runCli(['render', 'kubernetes', '--config', bad.path])
  assert.equal(refused.code, 1)
  assert.equal(refused.stdout, '')
  assert.match(refused.stderr, new RegExp(`^${bad.path}:3:10 admin\\.address: 127\\.0\\.0\\.1 is not reachable`))

  assert.equal((await runCli(['render', 'kubernetes', '--config', path, '--lb', 'gke'])).code, 2)
  assert.equal((await runCli(['render', 'docker', '--config', path])).code, 2)
  const missing = await runCli(['render', 'kubernetes', '--config', join(bad.dir, 'nope.yaml')])
  assert.equal(missing.code, 1)
  assert.match(missing.stderr, /nope\.yaml:1:1 cannot read config: file not found/)
})

test('the doctor finds nothing to fix in the rendered chain, and flags a load balancer value changed by hand', async () => {
  const { path, dir } = await writeConfig(LONG)
  const out = join(dir, 'k8s')
  const rendered = await runCli(['render', 'kubernetes', '--config', path, '--out', out, '--lb', 'gke-gateway'])
  assert.equal(rendered.code, 0, rendered.stderr)
  assert.deepEqual((await readdir(out)).sort(), ['configmap.yaml', 'deployment.yaml', 'doctor', 'gcpbackendpolicy.yaml', 'healthcheckpolicy.yaml', 'poddisruptionbudget.yaml', 'service.yaml'])
  assert.equal(parse(await readFile(join(out, 'gcpbackendpolicy.yaml'), 'utf8')).spec.default.timeoutSec, 2405)
  for (const route of ['chat', 'batch']) {
    const chain = join(out, 'doctor', `${route}.yaml`)
    const report = await runCli(['doctor', chain, '--format', 'json'])
    assert.equal(report.code, 0, report.stdout + report.stderr)
    const findings = (JSON.parse(report.stdout) as { findings: Array<{ severity: string, rule: string }> }).findings
    assert.deepEqual(findings.filter((f) => f.severity !== 'info'), [], `${route}: ${report.stdout}`)
  }
  // The load balancer's timeout lowered by hand in the manifest, below the chat route's limit: the doctor says who cuts.
  const chat = join(out, 'doctor', 'chat.yaml')
  const policy = join(out, 'gcpbackendpolicy.yaml')
  await writeFile(policy, (await readFile(policy, 'utf8')).replace('timeoutSec: 2405', 'timeoutSec: 600'))
  const report = await runCli(['doctor', chat, '--format', 'json'])
  assert.equal(report.code, 1)
  const findings = (JSON.parse(report.stdout) as { findings: Array<{ severity: string, rule: string, hops: string[] }> }).findings
  assert.ok(findings.some((f) => f.severity === 'error' && f.rule === 'total-cut' && f.hops.includes('load-balancer')), report.stdout)
})

test('behind an ALB or ingress-nginx the doctor reads the rendered Ingress: a timeout lowered there by hand is flagged', async () => {
  const { path, dir } = await writeConfig(LONG)
  for (const lb of ['aws-alb', 'ingress-nginx'] as const) {
    const out = join(dir, lb)
    const rendered = await runCli(['render', 'kubernetes', '--config', path, '--out', out, '--lb', lb])
    assert.equal(rendered.code, 0, rendered.stderr)
    const chain = join(out, 'doctor', 'chat.yaml')
    assert.match(await readFile(chain, 'utf8'), /- from: \.\.\n +path: \/v1\/chat\n/)
    const clean = await runCli(['doctor', chain, '--format', 'json'])
    assert.equal(clean.code, 0, clean.stdout + clean.stderr)
    // chat may be silent up to its streamIdle, 90 s: a 60 s load balancer idle timeout cuts it.
    const ingress = join(out, 'ingress.yaml')
    const text = await readFile(ingress, 'utf8')
    await writeFile(ingress, lb === 'aws-alb'
      ? text.replace('load-balancer-attributes: idle_timeout.timeout_seconds=1505', 'load-balancer-attributes: idle_timeout.timeout_seconds=60')
      : text.replace('proxy-read-timeout: "1505"', 'proxy-read-timeout: "60"'))
    const report = await runCli(['doctor', chain, '--format', 'json'])
    assert.equal(report.code, 1, `${lb}: ${report.stdout}`)
    const findings = (JSON.parse(report.stdout) as { findings: Array<{ severity: string, rule: string }> }).findings
    // The hop is named after the Ingress; the finding cites the edited line of ingress.yaml.
    assert.ok(findings.some((f) => f.severity === 'error' && f.rule === 'silence-cut' && /ingress\.yaml:\d+/.test(JSON.stringify(f))), `${lb}: ${report.stdout}`)
  }
})
