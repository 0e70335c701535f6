// longhaul's command line (DESIGN.md §6). Exit codes: 0 success, 1 invalid config or a failed
// run, 2 usage error.
import { existsSync } from 'node:fs'
import cluster from 'node:cluster'
import { availableParallelism } from 'node:os'
import { Command, CommanderError, Option } from 'commander'
import type { LoadedConfig } from './config/load.ts'
import { ConfigLoaderError, loadConfigApart } from './config/loader-process.ts'
import { ConfigError, formatDiagnostic } from './config/diagnostics.ts'
import { formatDuration } from './config/units.ts'
import { ROUTE_TIMEOUTS, ROUTE_TIMEOUT_NAMES } from './config/builtins.ts'
import type { RouteConfig } from './config/runtime.ts'
import { RunningGateway } from './lifecycle/start.ts'
import { GatewayLog } from './observe/log.ts'
import { GatewayMetrics } from './observe/metrics.ts'
import { drain } from './lifecycle/drain.ts'
import { reloadFrom, watchConfig } from './lifecycle/reload.ts'
import { openFiles } from './lifecycle/open-files.ts'
import { H2_STREAMS_PER_CONNECTION } from './upstream/endpoint.ts'
import { demoBanner, demoConfigText } from './demo/config.ts'

const DEFAULT_CONFIG = 'longhaul.yaml'
/** Concurrent streams one process is built to hold: fewer descriptors than that earn a warning at start. */
const STREAMS_WANTED = 10_000
const DEMO_LISTEN = '0.0.0.0:8080'
const DEMO_ADMIN = '127.0.0.1:9901'
const DEMO_UPSTREAM_PORT = 8000

function printDiagnostics (err: ConfigError): void {
  for (const d of err.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`)
}

// The embedded demo as a file would hold it: its in-process upstream shown where `longhaul
// demo-upstream` listens by default, so the printed text runs as it is next to that command.
const DEMO_NAME = '<embedded demo>'
const printableDemo = (options: { listen?: string, admin?: string }): string =>
  demoConfigText({ listen: options.listen ?? DEMO_LISTEN, admin: options.admin ?? DEMO_ADMIN, upstreamUrl: `http://127.0.0.1:${DEMO_UPSTREAM_PORT}` })

async function serve (options: { config?: string, listen?: string, admin?: string, watch?: boolean, printConfig?: boolean }): Promise<void> {
  // A worker process (workers > 1) gets everything from its primary. The pool's modules load only
  // where a pool runs (about 2 MiB less resident in a single process).
  if (cluster.isWorker) return await (await import('./lifecycle/worker.ts')).runWorker()
  const file = options.config ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined)
  if (options.printConfig === true) {
    if (file !== undefined) throw new CommanderError(2, 'longhaul.usage', `--print-config prints the embedded demo's config; ${file} is the config serve would run`)
    process.stdout.write(printableDemo(options))
    return
  }
  let loaded: LoadedConfig
  let stopDemo: (() => Promise<void>) | undefined
  let banner: ((gateway: string, admin: string) => string) | undefined
  if (options.watch === true && file === undefined) throw new CommanderError(2, 'longhaul.usage', '--watch needs a config file')
  try {
    if (file !== undefined) {
      if (options.listen !== undefined || options.admin !== undefined) throw new CommanderError(2, 'longhaul.usage', '--listen and --admin apply to the embedded demo only; set listen and admin in the config file')
      loaded = await loadConfigApart({ file })
    } else {
      const { startDemoUpstream } = await import('./demo/upstream.ts')
      const demo = await startDemoUpstream({ host: '127.0.0.1', port: 0 })
      stopDemo = () => demo.close()
      loaded = await loadConfigApart({ text: demoConfigText({ listen: options.listen ?? DEMO_LISTEN, admin: options.admin ?? DEMO_ADMIN, upstreamUrl: demo.url }), name: DEMO_NAME })
      banner = demoBanner
    }
  } catch (err) {
    if (!(err instanceof ConfigError || err instanceof ConfigLoaderError)) throw err
    if (err instanceof ConfigError) printDiagnostics(err)
    else process.stderr.write(`${file ?? DEMO_NAME}: ${err.message}\n`)
    await stopDemo?.()
    process.exitCode = 1
    return
  }
  // `auto` counts the CPUs this process may use once, at start (cgroup limits included).
  const workers = loaded.config.workers === 'auto' ? availableParallelism() : loaded.config.workers
  const log = new GatewayLog(loaded.config.log.level, undefined, { sharedStdout: workers > 1 })
  log.configWarnings(loaded.warnings)
  if (workers > 1 && file !== undefined) return await (await import('./lifecycle/primary.ts')).servePrimary(loaded, workers, log, { file, watch: options.watch === true })
  const running = new RunningGateway(loaded.config, log, new GatewayMetrics())
  const { gateway } = running
  // Read before the start, so nothing is awaited between the start and the handlers below.
  const files = await openFiles()
  try {
    await running.start()
  } catch (err) {
    // A listener that could not bind (address in use, say): close what did start, say why, exit 1.
    log.error('start failed', err)
    await running.close()
    await stopDemo?.()
    log.exited(1)
    await log.flush()
    process.exit(1)
  }
  if (banner !== undefined) process.stderr.write(banner(gateway.addresses[0]!, running.adminAddress))
  if (files !== null) log.openFiles(files.limit, files.http1Streams, STREAMS_WANTED)

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) {
      // A second signal ends at once: no flush to wait for.
      log.exited(1)
      process.exit(1)
    }
    stopping = true
    void drain(gateway, signal).then(async (cut) => {
      await running.close()
      await stopDemo?.()
      // 1 when requests had to be cut: the rollout lost work, and the exit code says so.
      const code = cut === 0 ? 0 : 1
      log.exited(code)
      await log.flush()
      process.exit(code)
    })
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGHUP', () => {
    if (file === undefined) log.notice('SIGHUP ignored: the embedded demo has no config file to reload')
    else void reloadFrom(gateway, file)
  })
  if (options.watch === true && file !== undefined) watchConfig(gateway, file)
  // `started` tells a supervisor (or a test) that signals and config changes are handled, so it
  // is logged only once the handlers are there: the line is written off the main thread, and a
  // signal sent on seeing it would otherwise find the default action (the process ends at once,
  // nothing drained, nothing logged).
  const { source } = loaded.config
  log.started(gateway.addresses, running.adminAddress, source.path, source.hash)
}

async function check (options: { config?: string, json?: boolean, explain?: string, demo?: boolean }): Promise<void> {
  if (options.demo === true && options.config !== undefined) throw new CommanderError(2, 'longhaul.usage', '--demo checks the embedded demo; leave out --config')
  const file = options.demo === true ? DEMO_NAME : options.config ?? DEFAULT_CONFIG
  // In this process: `check` ends when it is done, so the validator it loads goes with it.
  const { loadConfigFile, parseConfigText } = await import('./config/load.ts')
  try {
    const { config, warnings } = options.demo === true ? parseConfigText(printableDemo({}), DEMO_NAME) : await loadConfigFile(file)
    if (options.json === true) {
      process.stdout.write(`${JSON.stringify({ valid: true, file, errors: [], warnings }, null, 2)}\n`)
    } else {
      for (const w of warnings) process.stderr.write(`${formatDiagnostic(w)}\n`)
    }
    if (options.explain !== undefined) {
      const route = config.routes.find((r) => r.name === options.explain)
      if (route === undefined) {
        process.stderr.write(`${file}: no route named '${options.explain}' (routes: ${config.routes.map((r) => r.name).join(', ')})\n`)
        process.exitCode = 2
        return
      }
      process.stdout.write(explainRoute(route) + explainCapacity(config.upstreams[route.upstream]!))
    } else if (options.json !== true) {
      process.stdout.write(`${file}: valid (${config.routes.length} routes, ${Object.keys(config.upstreams).length} upstreams, ${warnings.length} warnings)\n`)
    }
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    if (options.json === true) {
      const errors = err.diagnostics.filter((d) => d.severity === 'error')
      const warnings = err.diagnostics.filter((d) => d.severity === 'warning')
      process.stdout.write(`${JSON.stringify({ valid: false, file, errors, warnings }, null, 2)}\n`)
    } else {
      printDiagnostics(err)
    }
    process.exitCode = 1
  }
}

function explainRoute (route: RouteConfig): string {
  const t = route.timeouts
  const lines = [`route ${route.name} → upstream ${route.upstream}`, `${'limit'.padEnd(17)} ${'value'.padEnd(22)} ${'source'.padEnd(9)} outcome`]
  for (const name of ROUTE_TIMEOUT_NAMES) {
    const limit = t[name]
    const value = name === 'firstByte' && t.firstByteFollowsRequest
      ? `= request (${formatDuration(t.request.ms)})`
      : name === 'firstEvent' && t.firstEventFollowsStreamIdle ? `= streamIdle (${formatDuration(t.streamIdle.ms)})` : formatDuration(limit.ms)
    lines.push(`${name.padEnd(17)} ${value.padEnd(22)} ${limit.source.padEnd(9)} ${ROUTE_TIMEOUTS[name].outcome}`)
  }
  return `${lines.join('\n')}\n`
}

/** How many requests the route's upstream takes at once, and what happens to the next one. */
function explainCapacity (u: import('./config/runtime.ts').UpstreamConfig): string {
  const queue = (ms: number): string => `waits in the open (longhaul_upstream_queue_depth, /status) up to ${formatDuration(ms)}, then overloaded`
  const inflight = u.limits === null
    ? 'unlimited (no limits)'
    : `at most ${u.limits.maxConcurrent} (limits.maxConcurrent); ${u.limits.maxQueued} more may wait: each ${queue(u.limits.queueTimeoutMs)}`
  const cap = u.maxConnectionsPerEndpoint
  const perConnection = u.protocol === 'h2' ? ` × ${H2_STREAMS_PER_CONNECTION} HTTP/2 streams` : ''
  const connections = cap === null
    ? `unlimited: ${u.protocol === 'h2' ? `HTTP/2, up to ${H2_STREAMS_PER_CONNECTION} requests on each` : 'HTTP/1.1, one per request in flight'}`
    : `at most ${cap}${perConnection} (maxConnectionsPerEndpoint): a request beyond them ${queue(u.connectionQueueTimeoutMs)}`
  return [
    `upstream ${u.name}: ${u.endpoints.length} endpoint${u.endpoints.length === 1 ? '' : 's'}`,
    `  in flight                 ${inflight}`,
    `  connections per endpoint  ${connections}`,
    ''
  ].join('\n')
}

async function demoUpstream (options: { port: string, host: string }): Promise<void> {
  const port = Number(options.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CommanderError(2, 'longhaul.usage', `--port must be 0-65535, got '${options.port}'`)
  const { startDemoUpstream, DEMO_KNOBS } = await import('./demo/upstream.ts')
  const demo = await startDemoUpstream({ host: options.host, port })
  process.stderr.write(`demo upstream listening on ${demo.url}\nfault knobs (request header x-demo-NAME or query parameter NAME):\n`)
  for (const knob of DEMO_KNOBS) process.stderr.write(`  ${knob.name.padEnd(20)} ${knob.description}\n`)
  const stop = (): void => { void demo.close().then(() => process.exit(0)) }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

const program = new Command()
  .name('longhaul')
  .description('An HTTP gateway for long-running requests: every timeout named, enforced and reported.')
  .exitOverride()
  .showHelpAfterError()

program.command('serve')
  .description(`run the gateway (with no --config and no ./${DEFAULT_CONFIG}: the embedded demo)`)
  .option('-c, --config <file>', 'config file')
  .option('--watch', 'reload the config file when it changes (also through a Kubernetes ConfigMap ..data symlink swap)')
  .addOption(new Option('--listen <host:port>', 'embedded demo only: gateway address (default 0.0.0.0:8080)'))
  .addOption(new Option('--admin <host:port>', 'embedded demo only: admin address (default 127.0.0.1:9901)'))
  .option('--print-config', 'print the embedded demo\'s config (its upstream at the address of `longhaul demo-upstream`) and exit')
  .action(serve)

program.command('check')
  .description('validate a config file: exit 0 valid (warnings printed), 1 invalid')
  .option('-c, --config <file>', `config file (default: ${DEFAULT_CONFIG})`)
  .option('--demo', 'check the embedded demo\'s config instead of a file')
  .option('--json', 'write a JSON report to stdout')
  .option('--explain <route>', 'print the route\'s effective timeouts and where each came from')
  .action(check)

program.command('demo-upstream')
  .description('run the built-in demo upstream (slow OpenAI- and Anthropic-style answers, with fault knobs)')
  .option('-p, --port <n>', 'port', String(DEMO_UPSTREAM_PORT))
  .option('--host <host>', 'address to bind', '127.0.0.1')
  .action(demoUpstream)

// `serve` loads only what serving uses: the other verbs' modules (the doctor, render, the demo
// upstream) stay out of a gateway's memory. Any other command line may need them, help included.
if (process.argv[2] !== 'serve') {
  const [{ registerDoctor }, { registerRender }, { registerProbe }, { registerHeadroom }] = await Promise.all([import('./doctor/command.ts'), import('./deploy/render.ts'), import('./probe/command.ts'), import('./observe/headroom-command.ts')])
  registerDoctor(program)
  registerRender(program)
  registerProbe(program)
  registerHeadroom(program)
}

try {
  await program.parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(0)
    if (err.code === 'longhaul.usage') process.stderr.write(`error: ${err.message}\n`)
    process.exit(2)
  }
  throw err
}
