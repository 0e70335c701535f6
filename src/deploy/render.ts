// `longhaul render kubernetes --config F [--out DIR] [--lb …]`: the manifests, derived from the
// config, for `kubectl apply`. A config a pod cannot run (loopback or port-0 listeners, an admin
// listener the kubelet's probes cannot reach, TLS files outside the config's directory) is refused
// with `FILE:LINE:COL path: message`, like `check`.
import { readFile, mkdir, writeFile } from 'node:fs/promises'
import { join, posix } from 'node:path'
import { LineCounter, parseDocument, type Document } from 'yaml'
import { CommanderError, Option, type Command } from 'commander'
import { parseConfigText } from '../config/load.ts'
import { Locator } from '../config/locate.ts'
import { ConfigError, formatDiagnostic, formatPath, type ConfigPath, type Diagnostic } from '../config/diagnostics.ts'
import type { RuntimeConfig, ListenAddress } from '../config/runtime.ts'
import { workloadManifests, CONFIG_DIR, CONFIG_FILE, type TlsSecret } from './kubernetes.ts'
import { frontPolicy, LOAD_BALANCERS, type LoadBalancer } from './load-balancers.ts'
import { chainFiles } from './chain.ts'
import { manifestYaml, type Manifest } from './manifest.ts'

export interface RenderOptions {
  readonly lb?: LoadBalancer
  readonly name: string
  readonly image: string
  readonly replicas: number
  /** CPUs per pod when the config says `workers: auto` (it then runs one worker per CPU of this limit). */
  readonly cpus?: number
}

/** CPUs per pod for `workers: auto` without --cpus. */
const AUTO_CPUS = 2

export interface Rendered {
  readonly manifests: Manifest[]
  /** Doctor chain files (one per route the doctor can reach by its path), for --out. */
  readonly chains: Array<{ file: string, text: string }>
  readonly warnings: Diagnostic[]
}

const WILDCARD = new Set(['0.0.0.0', '::', '[::]'])

type Problem = { path: ConfigPath, message: string }

/** What a pod cannot run, at the offending key. */
function podProblems (config: RuntimeConfig): Problem[] {
  const problems: Problem[] = []
  const bound = (a: ListenAddress, path: ConfigPath, who: string): void => {
    if (a.port === 0) problems.push({ path, message: `port 0 picks a free port at start: a pod needs a fixed one for its ${who}` })
    if (!WILDCARD.has(a.host)) problems.push({ path, message: `${a.host} is not reachable from outside the pod (${who}): bind 0.0.0.0:${a.port === 0 ? 'PORT' : a.port}` })
  }
  config.listen.forEach((l, i) => bound(l, ['listen', i, 'address'], 'Service'))
  bound(config.admin, ['admin', 'address'], 'readiness and liveness probes')
  return problems
}

/**
 * Where each TLS listener's files sit in the pod: the config names them relative to itself, and
 * the pod has the config in CONFIG_DIR, so a relative path (or an absolute one inside CONFIG_DIR)
 * is projected there from a Secret of type kubernetes.io/tls, one per certificate and key pair.
 */
function tlsSecrets (config: RuntimeConfig, doc: Document, name: string, problems: Problem[]): TlsSecret[] {
  const secrets = new Map<string, TlsSecret>()
  config.listen.forEach((l, i) => {
    if (l.tls === null) return
    const inPod = (which: 'cert' | 'key'): string | undefined => {
      const written = String(doc.getIn(['listen', i, 'tls', which]))
      const path = posix.normalize(written)
      const relative = posix.isAbsolute(path)
        ? (path.startsWith(`${CONFIG_DIR}/`) ? path.slice(CONFIG_DIR.length + 1) : undefined)
        : path
      if (relative === undefined || relative === '..' || relative.startsWith('../') || relative === CONFIG_FILE) {
        problems.push({ path: ['listen', i, 'tls', which], message: `${written} is outside the config's directory: the pod has the config in ${CONFIG_DIR}, where render places the certificate Secret's files, so write the path relative to the config file, without ..` })
        return undefined
      }
      return relative
    }
    const cert = inPod('cert')
    const key = inPod('key')
    if (cert === undefined || key === undefined) return
    const pair = `${cert}\0${key}`
    if (!secrets.has(pair)) secrets.set(pair, { secret: secrets.size === 0 ? `${name}-tls` : `${name}-tls-${secrets.size + 1}`, cert, key, listeners: [] })
    secrets.get(pair)!.listeners.push(i)
  })
  return [...secrets.values()]
}

export function renderKubernetes (configText: string, file: string, options: RenderOptions): Rendered {
  const { config, warnings: configWarnings } = parseConfigText(configText, file)
  const lines = new LineCounter()
  const doc = parseDocument(configText, { lineCounter: lines })
  const locator = new Locator(doc, lines)
  const at = (severity: 'error' | 'warning', path: ConfigPath, message: string): Diagnostic =>
    ({ severity, file, ...locator.at(path, { key: true }), path: formatPath(path), message })
  const problems = podProblems(config)
  const tls = tlsSecrets(config, doc, options.name, problems)
  const errors = problems.map((p) => at('error', p.path, p.message))
  if (errors.length > 0) throw new ConfigError(errors.sort((a, b) => a.line - b.line || a.col - b.col))

  const front = options.lb === undefined ? undefined : frontPolicy(options.lb, config, options.name)
  const manifests = [
    ...workloadManifests(config, configText, { ...options, cpus: config.workers === 'auto' ? options.cpus ?? AUTO_CPUS : config.workers, serviceAnnotations: front?.serviceAnnotations, tls }),
    ...(front?.manifests ?? [])
  ]
  const cpusIgnored = options.cpus !== undefined && config.workers !== 'auto' && options.cpus !== config.workers
    ? [at('warning', ['workers'], `--cpus ${options.cpus} is ignored: the pod gets one CPU per worker (${config.workers}); --cpus sizes the pod for workers: auto`)]
    : []
  const secretsToCreate = tls.map((t) => at('warning', ['listen', t.listeners[0]!, 'tls'], `the pod reads ${CONFIG_DIR}/${t.cert} and ${CONFIG_DIR}/${t.key} from Secret ${t.secret}, which render does not write (a private key does not belong in manifests): kubectl create secret tls ${t.secret} --cert=CERT --key=KEY, or let cert-manager issue it`))
  const warnings = [...configWarnings, ...cpusIgnored, ...secretsToCreate, ...(front?.warnings ?? []).map((w) => at('warning', w.path, w.message))]
  const chains = chainFiles(config)
  if (chains.skipped.length > 0) warnings.push(at('warning', ['routes'], `no doctor chain for ${chains.skipped.join(', ')}: an earlier route takes ${chains.skipped.length === 1 ? 'its path prefix' : 'their path prefixes'} first, and the doctor follows a request by its path`))
  return { manifests, chains: chains.files, warnings }
}

async function renderCommand (target: string, options: { config: string, out?: string, lb?: LoadBalancer, name: string, image?: string, replicas: string, cpus?: string }): Promise<void> {
  if (target !== 'kubernetes') throw new CommanderError(2, 'longhaul.usage', `render knows one target, kubernetes (got '${target}')`)
  const replicas = Number(options.replicas)
  if (!Number.isInteger(replicas) || replicas < 1) throw new CommanderError(2, 'longhaul.usage', `--replicas must be a whole number ≥ 1, got '${options.replicas}'`)
  const cpus = options.cpus === undefined ? undefined : Number(options.cpus)
  if (cpus !== undefined && (!Number.isInteger(cpus) || cpus < 1)) throw new CommanderError(2, 'longhaul.usage', `--cpus must be a whole number ≥ 1, got '${options.cpus}'`)
  if (!/^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$/.test(options.name)) throw new CommanderError(2, 'longhaul.usage', `--name must be a DNS label (lower case letters, digits, -), got '${options.name}'`)
  let text: string
  try {
    text = await readFile(options.config, 'utf8')
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message
    process.stderr.write(`${options.config}:1:1 cannot read config: ${reason}\n`)
    process.exitCode = 1
    return
  }
  const image = options.image ?? `longhaul:${await packageVersion()}`
  let rendered: Rendered
  try {
    rendered = renderKubernetes(text, options.config, { lb: options.lb, name: options.name, image, replicas, cpus })
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    for (const d of err.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`)
    process.exitCode = 1
    return
  }
  for (const w of rendered.warnings) process.stderr.write(`${formatDiagnostic(w)}\n`)
  if (options.out === undefined) {
    process.stdout.write(rendered.manifests.map(manifestYaml).join('---\n'))
    return
  }
  await mkdir(join(options.out, 'doctor'), { recursive: true })
  for (const m of rendered.manifests) await writeFile(join(options.out, m.file), manifestYaml(m))
  for (const c of rendered.chains) await writeFile(join(options.out, 'doctor', c.file), c.text)
  process.stderr.write(`${options.out}: ${rendered.manifests.map((m) => m.file).join(', ')}; doctor/: ${rendered.chains.map((c) => c.file).join(', ')}\n`)
}

async function packageVersion (): Promise<string> {
  const pkg = JSON.parse(await readFile(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }
  return pkg.version
}

/** Adds `render kubernetes` to longhaul's command line. */
export function registerRender (program: Command): void {
  program.command('render')
    .description('write deployment manifests derived from a config: kubernetes (ConfigMap, Deployment, Service, PodDisruptionBudget, and the load balancer\'s timeout policy with --lb)')
    .argument('<target>', 'kubernetes')
    .requiredOption('-c, --config <file>', 'config file')
    .option('-o, --out <dir>', 'write one file per object (and doctor/ROUTE.yaml chain files) here instead of one stream to stdout')
    .addOption(new Option('--lb <kind>', 'the load balancer in front, whose timeouts are made to fit the routes').choices(LOAD_BALANCERS))
    .option('--name <name>', 'name of the objects', 'longhaul')
    .option('--image <image>', 'container image (default: longhaul:VERSION, built from the Dockerfile)')
    .option('--replicas <n>', 'pods', '2')
    .option('--cpus <n>', `CPUs per pod with workers: auto (one worker each; default ${AUTO_CPUS}); with workers: N the pod gets N`)
    .action(renderCommand)
}
