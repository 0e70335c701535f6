// A request path from Kubernetes manifests: the entry point (a Gateway API Gateway with its
// HTTPRoute, or an Ingress), an Istio VirtualService for the backend, then the workload behind the
// Service (a Deployment or StatefulSet, or a Knative Service) with its app server's command line.
// Read: GKE Gateway classes and GCPBackendPolicy, GKE BackendConfig, ingress-nginx annotations,
// Knative timeouts, terminationGracePeriodSeconds, gunicorn/uvicorn/hypercorn flags. A setting the
// component does not act on becomes an ignored setting with its real symptom.
import { at, type Resource } from './manifests.ts'
import { appServer } from './app-args.ts'
import { ImportError, goDuration, seconds, type IgnoredSetting, type Imported, type ImportedHop, type ImportedValue } from './types.ts'
import { parseConfigText } from '../../config/load.ts'
import { ConfigError } from '../../config/diagnostics.ts'
import { longhaulValues } from '../longhaul.ts'
import type { Property } from '../properties.ts'

const GKE_CLASS = /^gke-l7-/
const GKE_GATEWAY_CAPABILITIES = 'https://cloud.google.com/kubernetes-engine/docs/how-to/gatewayclass-capabilities ; https://github.com/kserve/kserve/issues/5311 ("GKE\'s Gateway controller does not implement the spec.rules.timeouts field")'
const INGRESS_NGINX_ANNOTATIONS = 'https://github.com/kubernetes/ingress-nginx/blob/dbb11b92ddb77bee9c35e462479129354c84f939/docs/user-guide/nginx-configuration/annotations.md#custom-timeouts'
const NGINX_PREFIX = 'nginx.ingress.kubernetes.io/'
const ALB_ATTRIBUTES = 'alb.ingress.kubernetes.io/load-balancer-attributes'
const ALB_ANNOTATIONS = 'https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/ingress/annotations/#load-balancer-attributes'

/** ingress-nginx timeout annotations (seconds, as a plain number) → the property each sets. */
const NGINX_TIMEOUTS: Readonly<Record<string, Property>> = {
  'proxy-read-timeout': 'streamIdleTimeout',
  'proxy-connect-timeout': 'connectTimeout'
}

interface Hop {
  name: string
  preset: string | null
  mode?: string
  values: Partial<Record<Property, ImportedValue>>
  ignored: IgnoredSetting[]
  where: string
}

const duration = goDuration

/**
 * A timeout that is no duration: the API server's validation refuses the resource (the Gateway
 * API's CRD pattern, Istio's webhook), and what got in anyway does not set it. A finding at its
 * line, not a silent skip (the doctor would model the default as if nothing were written).
 */
function notADuration (setting: string, where: string, value: unknown, source: string): IgnoredSetting {
  return {
    setting,
    where,
    meant: 'requestTimeout',
    written: null,
    what: `${JSON.stringify(value)} is not a duration (Go syntax: a number and a unit, ms, s, m or h, compounded as in 1h30m): \`kubectl apply\` refuses the resource, and the route keeps its default`,
    works: 'a duration such as 90s or 1m30s',
    source,
    confirmed: false
  }
}

const GEP_2257 = 'https://gateway-api.sigs.k8s.io/geps/gep-2257/ (HTTPRoute timeouts: ^([0-9]{1,5}(h|m|s|ms)){1,4}$, read as Go\'s time.ParseDuration)'
const ISTIO_TIMEOUT = 'https://istio.io/latest/docs/reference/config/networking/virtual-service/#HTTPRoute (timeout: a google.protobuf.Duration)'

const label = (r: Resource): string => `${r.kind} ${r.name}`

function byKind (all: readonly Resource[], kind: string, group?: string): Resource[] {
  return all.filter((r) => r.kind === kind && (group === undefined || r.apiVersion.startsWith(group)))
}

function pathMatches (match: unknown, path: string | undefined): boolean {
  if (path === undefined) return true
  const value = (match as { path?: { value?: string } } | undefined)?.path?.value ?? (match as { path?: string } | undefined)?.path
  return typeof value !== 'string' || path.startsWith(value)
}

/** The Gateway API entry: a Gateway, the HTTPRoute rule the request takes, and the Service it routes to. */
function gatewayHop (gw: Resource, all: readonly Resource[], path: string | undefined): { hop: Hop, service: string | null } {
  const className = String(gw.body.spec?.gatewayClassName ?? '')
  const gke = GKE_CLASS.test(className)
  const preset = gke ? 'gcp-external-alb' : /istio/.test(className) ? 'istio' : /envoy|^eg$/.test(className) ? 'envoy' : null
  const hop: Hop = { name: gw.name, preset, values: {}, ignored: [], where: at(gw, ['spec', 'gatewayClassName']) }
  const routes = byKind(all, 'HTTPRoute').filter((r) => (r.body.spec?.parentRefs ?? []).some((p: { name?: string }) => p.name === gw.name))
  let service: string | null = null
  for (const route of routes) {
    const rules: any[] = route.body.spec?.rules ?? []
    const index = rules.findIndex((rule) => (rule.matches ?? [{}]).some((m: unknown) => pathMatches(m, path)))
    if (index < 0) continue
    const rule = rules[index]
    service = rule.backendRefs?.[0]?.name ?? null
    for (const key of ['request', 'backendRequest'] as const) {
      const value: unknown = rule.timeouts?.[key]
      if (value === undefined) continue
      const written = duration(value)
      const setting = `${label(route)} rules[${index}].timeouts.${key}: ${String(value)}`
      const where = at(route, ['spec', 'rules', index, 'timeouts', key])
      if (written === undefined) {
        hop.ignored.push(notADuration(setting, where, value, GEP_2257))
      } else if (gke) {
        hop.ignored.push({
          setting,
          where,
          meant: 'requestTimeout',
          written,
          what: `GKE's Gateway controller rejects HTTPRoute timeouts (class ${className}): \`kubectl apply\` succeeds, the route's status says \`GWCER104: Timeouts are not supported\`, and the backend service keeps its timeoutSec`,
          works: 'a GCPBackendPolicy on the Service with spec.default.timeoutSec',
          source: GKE_GATEWAY_CAPABILITIES,
          confirmed: true
        })
      } else if (key === 'request' || hop.values.requestTimeout === undefined) {
        hop.values.requestTimeout = { ms: written, setting, where }
      }
    }
    break
  }
  if (gke && service !== null) {
    for (const policy of byKind(all, 'GCPBackendPolicy').filter((p) => p.body.spec?.targetRef?.kind === 'Service' && p.body.spec.targetRef.name === service)) {
      const timeout = seconds(policy.body.spec?.default?.timeoutSec)
      if (timeout !== undefined) hop.values.requestTimeout = { ms: timeout, setting: `${label(policy)} spec.default.timeoutSec: ${String(policy.body.spec.default.timeoutSec)}`, where: at(policy, ['spec', 'default', 'timeoutSec']) }
    }
    const config = backendConfig(service, all)
    if (config !== null) {
      hop.ignored.push({
        setting: `${label(config.resource)} spec.timeoutSec: ${String(config.resource.body.spec?.timeoutSec)}`,
        where: at(config.resource, ['spec', 'timeoutSec']),
        meant: 'requestTimeout',
        written: seconds(config.resource.body.spec?.timeoutSec) ?? null,
        what: 'a BackendConfig applies to GKE Ingress backends only: a GKE Gateway\'s backend service does not read it',
        works: 'a GCPBackendPolicy on the same Service with spec.default.timeoutSec',
        source: 'https://cloud.google.com/kubernetes-engine/docs/how-to/configure-gateway-resources (GCPBackendPolicy replaces BackendConfig for Gateways; not re-read)',
        confirmed: false
      })
    }
  }
  return { hop, service }
}

/** The BackendConfig a Service names in its cloud.google.com/backend-config annotation. */
function backendConfig (service: string, all: readonly Resource[]): { resource: Resource } | null {
  const svc = byKind(all, 'Service', 'v1').find((s) => s.name === service)
  const annotation = svc?.body.metadata?.annotations?.['cloud.google.com/backend-config'] ?? svc?.body.metadata?.annotations?.['beta.cloud.google.com/backend-config']
  if (typeof annotation !== 'string') return null
  let name: string | undefined
  try {
    const parsed = JSON.parse(annotation) as { default?: string, ports?: Record<string, string> }
    name = parsed.default ?? Object.values(parsed.ports ?? {})[0]
  } catch {
    return null
  }
  const resource = byKind(all, 'BackendConfig').find((b) => b.name === name)
  return resource === undefined ? null : { resource }
}

/** An Ingress: ingress-nginx (its annotations) or GKE's own (its BackendConfig). */
function ingressHop (ing: Resource, all: readonly Resource[], path: string | undefined): { hop: Hop, service: string | null } {
  const annotations: Record<string, string> = ing.body.metadata?.annotations ?? {}
  const className = String(ing.body.spec?.ingressClassName ?? annotations['kubernetes.io/ingress.class'] ?? '')
  const hasNginx = Object.keys(annotations).some((k) => k.startsWith(NGINX_PREFIX))
  const hasAlb = Object.keys(annotations).some((k) => k.startsWith('alb.ingress.kubernetes.io/'))
  const nginx = /nginx/.test(className) || (className === '' && hasNginx)
  const alb = className === 'alb' || (className === '' && hasAlb)
  const gce = /^gce/.test(className) || (className === '' && !hasNginx && !hasAlb)
  const hop: Hop = { name: ing.name, preset: nginx ? 'ingress-nginx' : alb ? 'aws-alb' : gce ? 'gcp-external-alb' : null, values: {}, ignored: [], where: at(ing, ['kind']) }
  // AWS Load Balancer Controller: `idle_timeout.timeout_seconds=N` among the load balancer's attributes (one idle timer for both sides).
  const attributes = annotations[ALB_ATTRIBUTES]
  const idle = typeof attributes === 'string' ? /(?:^|,)\s*idle_timeout\.timeout_seconds=(\d+)/.exec(attributes)?.[1] : undefined
  if (alb && idle !== undefined) hop.values.streamIdleTimeout = { ms: Number(idle) * 1000, setting: `${label(ing)} ${ALB_ATTRIBUTES}: idle_timeout.timeout_seconds=${idle}`, where: at(ing, ['metadata', 'annotations', ALB_ATTRIBUTES]) }
  if (!alb && idle !== undefined) hop.ignored.push({ setting: `${label(ing)} ${ALB_ATTRIBUTES}: idle_timeout.timeout_seconds=${idle}`, where: at(ing, ['metadata', 'annotations', ALB_ATTRIBUTES]), meant: 'streamIdleTimeout', written: Number(idle) * 1000, what: `an AWS Load Balancer Controller annotation on an Ingress of class ${className === '' ? '(none)' : className}: that controller does not read it`, works: 'the setting of the controller that serves this Ingress', source: ALB_ANNOTATIONS, confirmed: true })
  const rules: any[] = ing.body.spec?.rules ?? []
  let service: string | null = ing.body.spec?.defaultBackend?.service?.name ?? null
  for (const rule of rules) {
    const found = (rule.http?.paths ?? []).find((p: { path?: string }) => path === undefined || p.path === undefined || path.startsWith(p.path))
    if (found !== undefined) { service = found.backend?.service?.name ?? found.backend?.serviceName ?? service; break }
  }
  for (const [key, value] of Object.entries(annotations)) {
    if (!key.startsWith(NGINX_PREFIX)) continue
    const property = NGINX_TIMEOUTS[key.slice(NGINX_PREFIX.length)]
    if (property === undefined) continue
    const where = at(ing, ['metadata', 'annotations', key])
    const setting = `${label(ing)} ${key}: "${value}"`
    const ms = seconds(value)
    if (!nginx) {
      hop.ignored.push({ setting, where, meant: property, written: ms ?? duration(value) ?? null, what: `an ingress-nginx annotation on an Ingress of class ${className === '' ? '(none: GKE\'s controller)' : className}: that controller does not read it`, works: gce ? 'BackendConfig spec.timeoutSec, named by the Service\'s cloud.google.com/backend-config annotation' : 'the setting of the controller that serves this Ingress', source: INGRESS_NGINX_ANNOTATIONS, confirmed: true })
    } else if (ms === undefined) {
      hop.ignored.push({ setting, where, meant: property, written: duration(value) ?? null, what: `ingress-nginx reads ${key} as a whole number of seconds: "${value}" is not one, so the default stays`, works: `${key}: "${Math.round((duration(value) ?? 60_000) / 1000)}"`, source: `${INGRESS_NGINX_ANNOTATIONS} (values are numbers of seconds; the fallback to the default was not re-read)`, confirmed: false })
    } else {
      hop.values[property] = { ms, setting, where }
    }
  }
  if (gce && service !== null) {
    const config = backendConfig(service, all)
    const timeout = config === null ? undefined : seconds(config.resource.body.spec?.timeoutSec)
    if (config !== null && timeout !== undefined) hop.values.requestTimeout = { ms: timeout, setting: `${label(config.resource)} spec.timeoutSec: ${String(config.resource.body.spec.timeoutSec)}`, where: at(config.resource, ['spec', 'timeoutSec']) }
  }
  return { hop, service }
}

/**
 * No Gateway or Ingress among the files, but a Google load balancer's policy on a Service (a
 * GCPBackendPolicy, or a BackendConfig the Service names): the load balancer in front of it, as
 * `longhaul render kubernetes --lb gke-gateway|gke-ingress` writes it.
 */
function policyFront (all: readonly Resource[]): { hop: Hop, service: string } | null {
  const policy = byKind(all, 'GCPBackendPolicy').find((p) => p.body.spec?.targetRef?.kind === 'Service')
  const annotated = byKind(all, 'Service', 'v1').find((svc) => backendConfig(svc.name, all) !== null)
  if (policy === undefined && annotated === undefined) return null
  const service = policy !== undefined ? String(policy.body.spec.targetRef.name) : annotated!.name
  const hop: Hop = { name: 'load-balancer', preset: 'gcp-external-alb', values: {}, ignored: [], where: at(policy ?? annotated!, ['kind']) }
  const timeout = policy !== undefined ? seconds(policy.body.spec?.default?.timeoutSec) : undefined
  if (policy !== undefined && timeout !== undefined) hop.values.requestTimeout = { ms: timeout, setting: `${label(policy)} spec.default.timeoutSec: ${String(policy.body.spec.default.timeoutSec)}`, where: at(policy, ['spec', 'default', 'timeoutSec']) }
  const config = policy === undefined ? backendConfig(service, all) : null
  const configTimeout = config === null ? undefined : seconds(config.resource.body.spec?.timeoutSec)
  if (config !== null && configTimeout !== undefined) hop.values.requestTimeout = { ms: configTimeout, setting: `${label(config.resource)} spec.timeoutSec: ${String(config.resource.body.spec.timeoutSec)}`, where: at(config.resource, ['spec', 'timeoutSec']) }
  return { hop, service }
}

/** An Istio VirtualService routing to the Service: its http[].timeout is the sidecar's route timeout. */
function virtualServiceHop (service: string, all: readonly Resource[]): Hop | null {
  const host = (h: unknown): boolean => typeof h === 'string' && (h === service || h.startsWith(`${service}.`))
  const vs = byKind(all, 'VirtualService').find((v) => (v.body.spec?.hosts ?? []).some(host) || (v.body.spec?.http ?? []).some((r: any) => (r.route ?? []).some((d: any) => host(d.destination?.host))))
  if (vs === undefined) return null
  const hop: Hop = { name: vs.name, preset: 'istio', values: {}, ignored: [], where: at(vs, ['kind']) }
  const http: any[] = vs.body.spec?.http ?? []
  const index = http.findIndex((r) => r.timeout !== undefined)
  if (index < 0) return hop
  const ms = duration(http[index].timeout)
  const setting = `${label(vs)} http[${index}].timeout: ${String(http[index].timeout)}`
  const where = at(vs, ['spec', 'http', index, 'timeout'])
  if (ms === undefined) hop.ignored.push(notADuration(setting, where, http[index].timeout, ISTIO_TIMEOUT))
  else hop.values.requestTimeout = { ms, setting, where }
  return hop
}

/**
 * A longhaul container (its image, or `longhaul` in its command) reading `--config` from a mounted
 * ConfigMap (what `longhaul render kubernetes` writes): the route the path takes, from the real config.
 */
function longhaulHop (owner: Resource, podPath: readonly (string | number)[], pod: any, all: readonly Resource[], path: string | undefined): Hop | null {
  for (const [c, container] of (pod?.containers ?? []).entries()) {
    const words: string[] = [...(container.command ?? []), ...(container.args ?? [])].map(String)
    if (!/(^|\/)longhaul([:@]|$)/.test(String(container.image ?? '')) && !words.some((w) => /(^|\/)longhaul$/.test(w))) continue
    const configFlag = words.indexOf('--config')
    const file = configFlag < 0 ? undefined : words[configFlag + 1]
    const hop: Hop = { name: String(container.name ?? owner.name), preset: 'longhaul', values: {}, ignored: [], where: at(owner, [...podPath, 'containers', c]) }
    if (file === undefined) return hop
    const dir = file.slice(0, file.lastIndexOf('/'))
    const mount = (container.volumeMounts ?? []).find((m: { mountPath?: string }) => m.mountPath === dir || m.mountPath === file)
    const volume = (pod.volumes ?? []).find((v: { name?: string }) => v.name === mount?.name)
    const key = file.slice(file.lastIndexOf('/') + 1)
    // A configMap volume, or a projected one (render's, when certificates sit beside the config).
    const names: unknown[] = [volume?.configMap?.name, ...(volume?.projected?.sources ?? []).map((s: { configMap?: { name?: string } }) => s.configMap?.name)]
    const configMap = byKind(all, 'ConfigMap').find((m) => names.includes(m.name) && typeof m.body.data?.[key] === 'string')
    const text = configMap?.body.data?.[key]
    if (configMap === undefined || typeof text !== 'string') return hop
    const where = at(configMap, ['data', key])
    let config
    try {
      // Its certificate files are in the pod, not here.
      ({ config } = parseConfigText(text, `${configMap.file} (ConfigMap ${configMap.name} data.${key})`, { readFiles: false }))
    } catch (err) {
      if (err instanceof ConfigError) throw new ImportError(where, `ConfigMap ${configMap.name} data.${key} is not a valid longhaul config: ${err.diagnostics[0]?.message ?? ''}`)
      throw err
    }
    const route = config.routes.find((r) => path !== undefined && path.startsWith(r.match.pathPrefix)) ?? config.routes[0]!
    for (const [property, v] of Object.entries(longhaulValues(config, route)) as Array<[Property, NonNullable<ReturnType<typeof longhaulValues>[Property]>]>) {
      hop.values[property] = { ms: v.ms, setting: `ConfigMap ${configMap.name} data.${key}: ${v.setting}`, where }
    }
    return hop
  }
  return null
}

/** The app container of a pod template: its server from command + args, or the container itself. */
function appHop (owner: Resource, podPath: readonly (string | number)[], pod: any, all: readonly Resource[] = [], path?: string): Hop {
  const gateway = longhaulHop(owner, podPath, pod, all, path)
  if (gateway !== null) return gateway
  const containers: any[] = pod?.containers ?? []
  for (const [c, container] of containers.entries()) {
    const words: string[] = [...(container.command ?? []), ...(container.args ?? [])].map(String)
    const nCommand = (container.command ?? []).length
    const where = (i: number): string => at(owner, [...podPath, 'containers', c, i < nCommand ? 'command' : 'args', i < nCommand ? i : i - nCommand])
    const server = appServer(words, where)
    if (server !== null) return { name: String(container.name ?? owner.name), preset: server.preset, mode: server.mode, values: server.values, ignored: [], where: at(owner, [...podPath, 'containers', c]) }
  }
  return { name: String(containers[0]?.name ?? owner.name), preset: null, values: {}, ignored: [], where: at(owner, [...podPath, 'containers']) }
}

function matchesSelector (labels: Record<string, string> | undefined, selector: Record<string, string> | undefined): boolean {
  if (selector === undefined || labels === undefined) return false
  return Object.entries(selector).every(([k, v]) => labels[k] === v)
}

/** The hops a set of manifests describe, from the entry point to the app, and the app's pod. */
export function importKubernetes (all: readonly Resource[], options: { path?: string } = {}): Imported {
  const fronts = [...byKind(all, 'Gateway', 'gateway.networking.k8s.io'), ...byKind(all, 'Ingress')]
  if (fronts.length > 1) throw new ImportError(fronts[1]!.file, `several entry points (${fronts.map(label).join(', ')}): give the files of one request path`)
  const hops: Hop[] = []
  let service: string | null = null
  const front = fronts[0]
  if (front !== undefined) {
    const entry = front.kind === 'Gateway' ? gatewayHop(front, all, options.path) : ingressHop(front, all, options.path)
    hops.push(entry.hop)
    service = entry.service
  } else {
    const policy = policyFront(all)
    if (policy !== null) { hops.push(policy.hop); service = policy.service }
  }
  const knative = byKind(all, 'Service', 'serving.knative.dev').find((k) => service === null || k.name === service)
  const workloadName = service
  if (service !== null) {
    const vs = virtualServiceHop(service, all)
    if (vs !== null) hops.push(vs)
  }
  let deploy: Imported['deploy'] = null
  if (knative !== undefined) {
    const spec = knative.body.spec?.template?.spec ?? {}
    const qp: Hop = { name: 'queue-proxy', preset: 'knative', values: {}, ignored: [], where: at(knative, ['kind']) }
    const fields: Array<[string, Property]> = [['timeoutSeconds', 'requestTimeout'], ['responseStartTimeoutSeconds', 'firstByteTimeout'], ['idleTimeoutSeconds', 'streamIdleTimeout']]
    for (const [field, property] of fields) {
      const ms = seconds(spec[field], field === 'idleTimeoutSeconds')
      if (ms !== undefined) qp.values[property] = { ms, setting: `${label(knative)} spec.template.spec.${field}: ${String(spec[field])}`, where: at(knative, ['spec', 'template', 'spec', field]) }
    }
    const app = appHop(knative, ['spec', 'template', 'spec'], spec)
    hops.push(qp, app)
    deploy = { hops: [qp.name, app.name] }
  } else {
    const svc = byKind(all, 'Service', 'v1').find((s) => s.name === workloadName)
    const workloads = [...byKind(all, 'Deployment'), ...byKind(all, 'StatefulSet')]
    const owner = svc === undefined ? (workloadName === null ? workloads[0] : undefined) : workloads.find((d) => matchesSelector(d.body.spec?.template?.metadata?.labels, svc.body.spec?.selector))
    if (owner !== undefined) {
      const pod = owner.body.spec?.template?.spec ?? {}
      const app = appHop(owner, ['spec', 'template', 'spec'], pod, all, options.path)
      hops.push(app)
      const grace = seconds(pod.terminationGracePeriodSeconds)
      deploy = grace === undefined || grace === null
        ? { hops: [app.name] }
        : { hops: [app.name], graceMs: grace, graceFrom: `${at(owner, ['spec', 'template', 'spec', 'terminationGracePeriodSeconds'])}: ${label(owner)} terminationGracePeriodSeconds: ${String(pod.terminationGracePeriodSeconds)}` }
    }
  }
  if (hops.length === 0) throw new ImportError(all[0]?.file ?? '', 'no request path found: expected a Gateway and HTTPRoute, an Ingress, a Knative Service, or a Deployment')
  // Resources of one path are often named alike (Ingress web, VirtualService web, container web): one name per hop.
  const roles: Readonly<Record<string, string>> = { istio: 'mesh' }
  const taken = new Set<string>()
  for (const hop of hops) {
    if (taken.has(hop.name)) {
      const renamed = `${hop.name}-${roles[hop.preset ?? ''] ?? 'app'}`
      if (deploy !== null) deploy = { ...deploy, hops: deploy.hops.map((n) => n === hop.name && hop === hops[hops.length - 1] ? renamed : n) }
      hop.name = renamed
    }
    taken.add(hop.name)
  }
  return { hops: hops as ImportedHop[], deploy }
}
