// The workload's manifests, derived from the config so that they cannot disagree with it:
// a ConfigMap holding the config file, a Deployment running `serve --watch` on it (grace period,
// probes, ports, CPU from the config), a Service and a PodDisruptionBudget.
import type { RuntimeConfig, ListenerConfig } from '../config/runtime.ts'
import { formatDuration } from '../config/units.ts'
import { frontLimits, gracePeriodSeconds, GRACE_MARGIN_SECONDS } from './front-limits.ts'
import type { Manifest } from './manifest.ts'

export interface WorkloadOptions {
  readonly name: string
  readonly image: string
  readonly replicas: number
  /** CPUs the pod requests (and is limited to): one per worker process. */
  readonly cpus: number
  /** Annotations the load balancer needs on the Service (GKE Ingress: its BackendConfig, NEGs). */
  readonly serviceAnnotations?: Readonly<Record<string, string>>
  /** The TLS listeners' files, each pair projected from a Secret beside the config. */
  readonly tls?: readonly TlsSecret[]
}

/** A Secret of type kubernetes.io/tls whose tls.crt and tls.key the pod reads at `cert` and `key` (relative to CONFIG_DIR). */
export interface TlsSecret {
  readonly secret: string
  readonly cert: string
  readonly key: string
  /** Indexes in `listen` of the listeners serving this pair. */
  readonly listeners: number[]
}

/** Where the ConfigMap is mounted: a directory, so `--watch` sees its `..data` symlink swap. */
export const CONFIG_DIR = '/etc/longhaul'
export const CONFIG_FILE = 'longhaul.yaml'

export function labels (name: string): Record<string, string> {
  return { 'app.kubernetes.io/name': 'longhaul', 'app.kubernetes.io/instance': name }
}

/** IANA service names (at most 15 characters) for the listeners: http, https, h2c, then -2, -3. */
export function portNames (listen: readonly ListenerConfig[]): string[] {
  const seen = new Map<string, number>()
  return listen.map((l) => {
    const base = l.kind === 'http1' ? 'http' : l.kind === 'tls' ? 'https' : 'h2c'
    const n = (seen.get(base) ?? 0) + 1
    seen.set(base, n)
    return n === 1 ? base : `${base}-${n}`
  })
}

export function workloadManifests (config: RuntimeConfig, configText: string, options: WorkloadOptions): Manifest[] {
  const { name } = options
  const limits = frontLimits(config)
  const grace = gracePeriodSeconds(limits)
  const names = portNames(config.listen)
  const adminPort = config.admin.port
  const cpu = String(options.cpus)

  // One projected volume: the config and the certificates it names, in one directory and updated
  // in one atomic swap (a second volume mounted inside the first would need a mount point in a
  // read-only directory).
  const configSources = [
    { configMap: { name: `${name}-config` } },
    ...(options.tls ?? []).map((t) => ({ secret: { name: t.secret, items: [{ key: 'tls.crt', path: t.cert }, { key: 'tls.key', path: t.key }] } }))
  ]

  const configMap: Manifest = {
    file: 'configmap.yaml',
    header: 'The config file itself: the Deployment mounts it as a directory and `serve --watch` reloads\nit when the ConfigMap changes (settings only a restart applies need a rollout).',
    object: {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: `${name}-config`, labels: labels(name), annotations: { 'longhaul/config-hash': config.source.hash } },
      data: { [CONFIG_FILE]: configText }
    }
  }

  const deployment: Manifest = {
    file: 'deployment.yaml',
    object: {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, labels: labels(name) },
      spec: {
        replicas: options.replicas,
        selector: { matchLabels: labels(name) },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
        template: {
          metadata: { labels: labels(name) },
          spec: {
            terminationGracePeriodSeconds: grace,
            containers: [{
              name: 'longhaul',
              image: options.image,
              args: ['--config', `${CONFIG_DIR}/${CONFIG_FILE}`, '--watch'],
              ports: [
                ...config.listen.map((l, i) => ({ name: names[i]!, containerPort: l.port, protocol: 'TCP' })),
                { name: 'admin', containerPort: adminPort, protocol: 'TCP' }
              ],
              readinessProbe: { httpGet: { path: '/readyz', port: 'admin' }, periodSeconds: 2, failureThreshold: 1 },
              livenessProbe: { httpGet: { path: '/healthz', port: 'admin' }, periodSeconds: 10, failureThreshold: 3 },
              resources: { requests: { cpu }, limits: { cpu } },
              securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
              volumeMounts: [{ name: 'config', mountPath: CONFIG_DIR, readOnly: true }]
            }],
            volumes: [{ name: 'config', projected: { sources: configSources } }]
          }
        }
      }
    },
    comments: [
      [['spec', 'strategy'], 'A new pod is ready before an old one drains: capacity never drops during a rollout.'],
      [['spec', 'template', 'spec', 'terminationGracePeriodSeconds'], `drain.delay ${formatDuration(config.drain.delayMs)} + drain.timeout ${formatDuration(config.drain.timeoutMs)} + ${GRACE_MARGIN_SECONDS}s (error records, log flush, exit):\nKubernetes sends SIGKILL after this, so it must outlast the whole drain.`],
      [['spec', 'template', 'spec', 'containers'], `args: the image's entry point is \`longhaul serve\`; --watch follows ConfigMap updates.\nreadinessProbe: /readyz turns 503 the moment SIGTERM arrives, so the pod leaves the endpoints\nwhile it keeps serving for drain.delay. livenessProbe: /healthz stays 200 through a long drain.\nresources: ${cpu} CPU, one per worker process (${config.workers === 'auto' ? 'workers: auto counts them from this limit: os.availableParallelism()' : `workers: ${config.workers}`}).\nvolumeMounts: the whole directory, never a subPath (a subPath mount never sees an update).${(options.tls ?? []).length === 0 ? '' : `\nvolumes: the config and, beside it, the certificates from ${options.tls!.map((t) => `Secret ${t.secret}`).join(', ')} (type kubernetes.io/tls);\na listener reads its certificate at start: a renewed one takes a rollout (kubectl rollout restart).`}`]
    ]
  }

  const service: Manifest = {
    file: 'service.yaml',
    object: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, labels: labels(name), ...(options.serviceAnnotations === undefined ? {} : { annotations: { ...options.serviceAnnotations } }) },
      spec: {
        selector: labels(name),
        ports: config.listen.map((l, i) => ({
          name: names[i]!,
          port: l.port,
          targetPort: names[i]!,
          protocol: 'TCP',
          // Cleartext HTTP/2 with prior knowledge: tells load balancers to speak h2c to it.
          ...(l.kind === 'h2c' ? { appProtocol: 'kubernetes.io/h2c' } : {})
        }))
      }
    }
  }

  const disruptionBudget: Manifest = {
    file: 'poddisruptionbudget.yaml',
    header: 'Voluntary evictions (node drains, upgrades) take one pod at a time; each drains as on a rollout.',
    object: {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { name, labels: labels(name) },
      spec: { maxUnavailable: 1, selector: { matchLabels: labels(name) } }
    }
  }
  return [configMap, deployment, service, disruptionBudget]
}
