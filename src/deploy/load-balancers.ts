// The load balancer in front, made to fit the routes: each variant's timeout is derived from the
// longest route limit (or the longest silence, for the load balancers that time silence) and kept
// below the gateway's keep-alive (downstream.idleTimeout), with a comment saying why.
import type { RuntimeConfig } from '../config/runtime.ts'
import { formatDuration } from '../config/units.ts'
import { frontLimits, secondsAbove, MARGIN_SECONDS, type Bound, type FrontLimits } from './front-limits.ts'
import { labels, portNames } from './kubernetes.ts'
import type { Manifest } from './manifest.ts'

export const LOAD_BALANCERS = ['gke-gateway', 'gke-ingress', 'aws-alb', 'ingress-nginx'] as const
export type LoadBalancer = typeof LOAD_BALANCERS[number]

/** A problem with the config as seen from the load balancer, at a config key. */
export interface FrontWarning {
  readonly path: ReadonlyArray<string | number>
  readonly message: string
}

export interface FrontPolicy {
  readonly manifests: Manifest[]
  readonly serviceAnnotations?: Record<string, string>
  readonly warnings: FrontWarning[]
}

// Values a load balancer takes at most (their documentation): an unbounded longhaul limit gets this.
/** For a `none` limit: a day (GCP's timeoutSec goes up to 2,147,483,647 s; nginx has no cap). */
const UNBOUNDED_SECONDS = 86_400
/** GCP: the load balancer's keep-alive to backends is fixed at 600 s (request-distribution docs). */
const GCP_BACKEND_KEEPALIVE_SECONDS = 600
/** GCP connection draining and AWS deregistration delay: at most an hour. */
const DRAIN_CAP_SECONDS = 3600
/** AWS ALB idle_timeout.timeout_seconds: 1-4000 s. */
const ALB_MAX_IDLE_SECONDS = 4000

function seconds (bound: Bound, unbounded: number, what: string, warnings: FrontWarning[], path: ReadonlyArray<string | number>): number {
  if (bound.ms === null) {
    warnings.push({ path, message: `${bound.why} is unlimited, a load balancer cannot be: its ${what} is set to ${unbounded}s, which cuts a request that lasts longer` })
    return unbounded
  }
  return Math.min(secondsAbove(bound.ms), unbounded)
}

const why = (bound: Bound, what: string): string =>
  `${what}: longhaul's longest limit (${bound.why}) + ${MARGIN_SECONDS}s, so longhaul's own named limit fires first.`

function drainSeconds (limits: FrontLimits): number {
  return Math.min(Math.ceil(limits.drainMs / 1000), DRAIN_CAP_SECONDS)
}

/** The first HTTP/1.1 listener: what an Ingress sends to (HTTP/1.1 to backends). */
function ingressPort (config: RuntimeConfig): string {
  const names = portNames(config.listen)
  const i = config.listen.findIndex((l) => l.kind === 'http1')
  return names[i === -1 ? 0 : i]!
}

function ingress (config: RuntimeConfig, name: string, className: string, annotations: Record<string, string>): Record<string, unknown> {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name, labels: labels(name), annotations },
    spec: { ingressClassName: className, defaultBackend: { service: { name, port: { name: ingressPort(config) } } } }
  }
}

function keepAliveBelowIdle (limits: FrontLimits, lbSeconds: number, who: string, warnings: FrontWarning[]): void {
  if (lbSeconds * 1000 >= limits.idleTimeoutMs) {
    warnings.push({ path: ['downstream', 'idleTimeout'], message: `${formatDuration(limits.idleTimeoutMs)} is not above ${who}'s ${lbSeconds}s keep-alive to the gateway: it may reuse a connection longhaul is closing (502); raise it above ${lbSeconds}s` })
  }
}

export function frontPolicy (lb: LoadBalancer, config: RuntimeConfig, name: string): FrontPolicy {
  const limits = frontLimits(config)
  const warnings: FrontWarning[] = []
  const drain = drainSeconds(limits)
  const adminPort = config.admin.port
  switch (lb) {
    case 'gke-gateway':
    case 'gke-ingress': {
      // GCP's backend service timeout is the whole response's time (and a WebSocket's lifetime), not an idle timer.
      const timeoutSec = seconds(limits.longestRequest, UNBOUNDED_SECONDS, 'timeoutSec', warnings, ['routes'])
      keepAliveBelowIdle(limits, GCP_BACKEND_KEEPALIVE_SECONDS, 'the Google Cloud load balancer (fixed)', warnings)
      const timeoutWhy = why(limits.longestRequest, `timeoutSec ${timeoutSec}`) + '\nGCP counts the whole response against it (30 s by default), not silence.'
      const drainWhy = `drainingTimeoutSec ${drain}: drain.delay + drain.timeout${drain === DRAIN_CAP_SECONDS ? ' (capped at 1 h)' : ''}; 0 (the default) would cut\nthe requests of a removed pod at once, before longhaul's drain lets them finish.`
      if (lb === 'gke-gateway') {
        const targetRef = { group: '', kind: 'Service', name }
        return {
          warnings,
          manifests: [{
            file: 'gcpbackendpolicy.yaml',
            header: 'GKE Gateway: the backend timeout lives here. Never in an HTTPRoute `timeouts` block: GKE\'s\ncontrollers reject it (GWCER104) and apply nothing, and the 30 s default cuts every long stream.',
            object: { apiVersion: 'networking.gke.io/v1', kind: 'GCPBackendPolicy', metadata: { name, labels: labels(name) }, spec: { default: { timeoutSec, connectionDraining: { drainingTimeoutSec: drain } }, targetRef } },
            comments: [[['spec', 'default', 'timeoutSec'], timeoutWhy], [['spec', 'default', 'connectionDraining'], drainWhy]]
          }, {
            file: 'healthcheckpolicy.yaml',
            header: 'The load balancer\'s health check asks /readyz on the admin port: a draining pod leaves it at once.',
            object: { apiVersion: 'networking.gke.io/v1', kind: 'HealthCheckPolicy', metadata: { name, labels: labels(name) }, spec: { default: { config: { type: 'HTTP', httpHealthCheck: { portSpecification: 'USE_FIXED_PORT', port: adminPort, requestPath: '/readyz' } } }, targetRef } }
          }]
        }
      }
      return {
        warnings,
        serviceAnnotations: { 'cloud.google.com/backend-config': JSON.stringify({ default: name }), 'cloud.google.com/neg': JSON.stringify({ ingress: true }) },
        manifests: [{
          file: 'backendconfig.yaml',
          header: 'GKE Ingress: the Service\'s cloud.google.com/backend-config annotation attaches this to its backends;\ncontainer-native (NEG) backends, so the load balancer sends to pods and follows their readiness.',
          object: { apiVersion: 'cloud.google.com/v1', kind: 'BackendConfig', metadata: { name, labels: labels(name) }, spec: { timeoutSec, connectionDraining: { drainingTimeoutSec: drain }, healthCheck: { type: 'HTTP', requestPath: '/readyz', port: adminPort } } },
          comments: [[['spec', 'timeoutSec'], timeoutWhy], [['spec', 'connectionDraining'], drainWhy], [['spec', 'healthCheck'], 'The load balancer asks /readyz on the admin port: a draining pod leaves it at once.']]
        }]
      }
    }
    case 'aws-alb': {
      // One idle timer for both sides of the ALB: it must outlast any healthy silence, and end before longhaul's keep-alive.
      const idle = seconds(limits.longestSilence, ALB_MAX_IDLE_SECONDS, 'idle_timeout.timeout_seconds', warnings, ['routes'])
      keepAliveBelowIdle(limits, idle, 'the ALB', warnings)
      const annotations = {
        'alb.ingress.kubernetes.io/target-type': 'ip',
        'alb.ingress.kubernetes.io/load-balancer-attributes': `idle_timeout.timeout_seconds=${idle}`,
        'alb.ingress.kubernetes.io/target-group-attributes': `deregistration_delay.timeout_seconds=${drain}`,
        'alb.ingress.kubernetes.io/healthcheck-path': '/readyz',
        'alb.ingress.kubernetes.io/healthcheck-port': String(adminPort)
      }
      return {
        warnings,
        manifests: [{
          file: 'ingress.yaml',
          header: `AWS Load Balancer Controller.\n${why(limits.longestSilence, `idle_timeout.timeout_seconds=${idle}`)}\nThe ALB times silence on both sides with it (60 s by default), and it stays below longhaul's keep-alive\n(downstream.idleTimeout ${formatDuration(limits.idleTimeoutMs)}), so the ALB, not longhaul, closes an idle connection.\nderegistration_delay.timeout_seconds=${drain}: drain.delay + drain.timeout${drain === DRAIN_CAP_SECONDS ? ' (capped at 1 h)' : ''}; the default 300 s would cut longer requests.\nhealthcheck: /readyz on the admin port, so a draining pod is taken out at once.`,
          object: ingress(config, name, 'alb', annotations)
        }]
      }
    }
    case 'ingress-nginx': {
      // proxy_read_timeout and proxy_send_timeout time the gap between two reads / writes, not the whole request.
      const read = seconds(limits.longestSilence, UNBOUNDED_SECONDS, 'proxy-read-timeout', warnings, ['routes'])
      const annotations = {
        'nginx.ingress.kubernetes.io/proxy-read-timeout': String(read),
        'nginx.ingress.kubernetes.io/proxy-send-timeout': String(read),
        'nginx.ingress.kubernetes.io/proxy-body-size': `${Math.ceil(config.downstream.maxBodySize / 1024)}k`,
        'nginx.ingress.kubernetes.io/proxy-request-buffering': 'off'
      }
      return {
        warnings,
        manifests: [{
          file: 'ingress.yaml',
          header: `ingress-nginx.\n${why(limits.longestSilence, `proxy-read-timeout ${read}`)}\nnginx times the gap between two reads from longhaul (60 s by default); proxy-send-timeout, the gap between\ntwo writes to it, gets the same bound (an upload paused by its client or held back by the upstream).\nproxy-body-size: downstream.maxBodySize (nginx's default is 1m); proxy-request-buffering off: the body\nstreams to longhaul as it arrives, so its bodyIdleTimeout sees the client. The controller's\nupstream-keepalive-timeout (60 s by default) stays below downstream.idleTimeout ${formatDuration(limits.idleTimeoutMs)}.`,
          object: ingress(config, name, 'nginx', annotations)
        }]
      }
    }
  }
}
