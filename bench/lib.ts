// What the bench scripts share: the upstream and the gateway as child processes of their own (so
// the load generator never shares an event loop with what it measures), killed by PID whatever
// happens, plus /proc readings and percentiles.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir, totalmem, cpus } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const CLI = join(ROOT, 'src', 'cli.ts')

export type LogLine = Record<string, unknown> & { msg: string }

export interface Child {
  name: string
  process: ChildProcess
  pid: number
  stderr: () => string
}

const children = new Set<Child>()
const tempDirs = new Set<string>()

/**
 * Any command as a child of the bench, stopped with the others whatever happens. stdout: a pipe,
 * or a file descriptor to write to (an access log the bench must not spend its CPU reading).
 */
export function spawnProcess (name: string, command: string, args: string[], stdout: 'pipe' | number = 'pipe', env: Record<string, string> = {}): Child {
  const proc = spawn(command, args, { cwd: ROOT, stdio: ['ignore', stdout, 'pipe'], env: { ...process.env, ...env } })
  if (proc.pid === undefined) throw new Error(`could not start ${name}`)
  let err = ''
  proc.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-20_000) })
  const child: Child = { name, process: proc, pid: proc.pid, stderr: () => err }
  children.add(child)
  proc.once('exit', () => children.delete(child))
  return child
}

function spawnChild (name: string, args: string[], nodeFlags: string[] = [], env: Record<string, string> = {}, cli = CLI): Child {
  // process.execPath: the Node 24 that runs the bench runs the children too.
  return spawnProcess(name, process.execPath, [...nodeFlags, cli, ...args], 'pipe', env)
}

/** A temporary directory, removed with the children at the end. */
export function tempDir (prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  tempDirs.add(dir)
  return dir
}

export function alive (proc: ChildProcess): boolean {
  return proc.exitCode === null && proc.signalCode === null
}

/**
 * SIGTERM; a second SIGTERM after a second (the gateway ends at once on a second signal, DESIGN.md
 * §9); SIGKILL after graceMs if it is still there.
 */
export async function stopChild (child: Child, graceMs = 4000): Promise<void> {
  const proc = child.process
  if (!alive(proc)) return
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  const signal = (name: NodeJS.Signals): void => { if (alive(proc)) { try { process.kill(child.pid, name) } catch { /* already gone */ } } }
  signal('SIGTERM')
  const again = setTimeout(() => signal('SIGTERM'), 1000)
  const kill = setTimeout(() => signal('SIGKILL'), graceMs)
  await exited
  clearTimeout(again)
  clearTimeout(kill)
}

/** Stops every child this process started, by PID, and removes the temp config files. */
export async function stopAll (): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c)))
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
  tempDirs.clear()
}

/** Last resort when the bench itself dies: SIGKILL the children synchronously. */
function killAllNow (): void {
  for (const c of children) if (alive(c.process)) { try { process.kill(c.pid, 'SIGKILL') } catch { /* already gone */ } }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
}
process.once('exit', killAllNow)
let interrupted = false

/**
 * Runs main with a hard time bound: past it, the children are killed and the bench exits 1.
 * main resolves to the exit code. Ctrl-C and SIGTERM stop the children too (installed here, not
 * on import, so that a child process that imports this file keeps its own signal handling).
 */
export function runBounded (limitMs: number, main: () => Promise<number>): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      interrupted = true
      process.stderr.write(`bench: ${signal}, stopping children\n`)
      void stopAll().finally(() => process.exit(130))
    })
  }
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench: did not finish within ${Math.round(limitMs / 1000)} s; stopping\n`)
    void stopAll().finally(() => process.exit(1))
  }, limitMs)
  main().then(async (code) => {
    clearTimeout(watchdog)
    await stopAll()
    process.exitCode = code
  }, async (err: unknown) => {
    clearTimeout(watchdog)
    // Interrupted: the children were stopped under the bench, which then fails for that reason.
    if (interrupted) return
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    for (const c of children) process.stderr.write(`--- ${c.name} (pid ${c.pid}) stderr ---\n${c.stderr().slice(-3000)}\n`)
    await stopAll()
    process.exitCode = 1
  })
}

function withTimeout<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms) })
  ]).finally(() => clearTimeout(timer))
}

export interface Upstream extends Child { url: string }

/** `longhaul demo-upstream --port 0`; it prints the URL it bound on stderr. */
export async function startUpstream (): Promise<Upstream> {
  const child = spawnChild('demo upstream', ['demo-upstream', '--port', '0', '--host', '127.0.0.1'])
  const url = await withTimeout(new Promise<string>((resolve, reject) => {
    const onData = (): void => {
      const match = /demo upstream listening on (http:\/\/\S+)/.exec(child.stderr())
      if (match !== null) { child.process.stderr!.off('data', onData); resolve(match[1]!) }
    }
    child.process.stderr!.on('data', onData)
    child.process.once('exit', (code) => reject(new Error(`demo upstream exited with ${code}: ${child.stderr()}`)))
  }), 15_000, 'demo upstream start')
  return { ...child, url }
}

/** A free loopback port: the gateway at log level warn does not log the `started` line with its ports. */
export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

export interface Gateway extends Child {
  url: string
  adminUrl: string
  /** Every JSON line the gateway wrote on stdout. */
  lines: LogLine[]
  onLine: (listener: (line: LogLine) => void) => void
}

export interface GatewayOptions {
  upstreamUrl: string
  logLevel: 'info' | 'warn'
  streamIdle?: string
  maxConnectionsPerEndpoint?: number
  /** Flags for the gateway's node, e.g. --cpu-prof (the profile is written when it exits). */
  nodeFlags?: string[]
  /** Extra environment of the gateway process, e.g. MALLOC_ARENA_MAX. */
  env?: Record<string, string>
  /** h2c: the listener speaks cleartext HTTP/2 (prior knowledge) instead of HTTP/1.1. */
  protocol?: 'h2c'
  /** The config's `workers` (absent: the default, one process). */
  workers?: number
  /** telemetry.otlp.endpoint: spans exported to this OTLP/HTTP receiver. */
  otlpEndpoint?: string
  /** Another checkout's src/cli.ts to run instead of this one's (a baseline to compare with). */
  cli?: string
}

/** `longhaul serve --config FILE` on fixed free ports; ready once /readyz answers 200. */
export async function startGateway (opts: GatewayOptions): Promise<Gateway> {
  const port = await freePort()
  const adminPort = await freePort()
  const config = [
    `listen: [{ address: 127.0.0.1:${port}${opts.protocol === undefined ? '' : `, protocol: ${opts.protocol}`} }]`,
    `admin: { address: 127.0.0.1:${adminPort} }`,
    `log: { level: ${opts.logLevel} }`,
    ...(opts.otlpEndpoint === undefined ? [] : [`telemetry: { otlp: { endpoint: ${opts.otlpEndpoint} } }`]),
    ...(opts.workers === undefined ? [] : [`workers: ${opts.workers}`]),
    'upstreams:',
    '  demo:',
    `    endpoints: [${opts.upstreamUrl}]`,
    ...(opts.maxConnectionsPerEndpoint === undefined ? [] : [`    maxConnectionsPerEndpoint: ${opts.maxConnectionsPerEndpoint}`]),
    'routes:',
    '  - name: all',
    '    upstream: demo',
    `    timeouts: { streamIdle: ${opts.streamIdle ?? '1s'}, request: 10m }`,
    // The bench stops the gateway when it is done: no load balancer to wait for.
    'drain: { delay: 0s, timeout: 2s }',
    ''
  ].join('\n')
  const dir = tempDir('longhaul-bench-')
  const configPath = join(dir, 'longhaul.yaml')
  writeFileSync(configPath, config)
  const child = spawnChild('gateway', ['serve', '--config', configPath], opts.nodeFlags, opts.env, opts.cli)
  const lines: LogLine[] = []
  const listeners: Array<(line: LogLine) => void> = []
  createInterface({ input: child.process.stdout! }).on('line', (text) => {
    let line: LogLine
    try { line = JSON.parse(text) as LogLine } catch { return }
    lines.push(line)
    for (const l of listeners) l(line)
  })
  const adminUrl = `http://127.0.0.1:${adminPort}`
  const until = Date.now() + 15_000
  for (;;) {
    if (!alive(child.process)) throw new Error(`gateway exited before it was ready: ${child.stderr()}`)
    try {
      const res = await fetch(`${adminUrl}/readyz`, { signal: AbortSignal.timeout(1000) })
      await res.arrayBuffer()
      if (res.status === 200) break
    } catch { /* not listening yet */ }
    if (Date.now() > until) throw new Error(`gateway not ready within 15 s: ${child.stderr()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { ...child, url: `http://127.0.0.1:${port}`, adminUrl, lines, onLine: (l) => { listeners.push(l) } }
}

/** Resident set size of a process, in KiB (/proc/PID/status VmRSS). */
export function rssKiB (pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (match === null) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(match[1])
}

let clockTicks: number | undefined
function ticksToMs (ticks: number): number {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  return ticks * 1000 / clockTicks
}

/** CPU time (user + system) a process used so far, in ms (/proc/PID/stat). */
export function cpuMs (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name may contain spaces: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return ticksToMs(Number(fields[11]) + Number(fields[12]))
}

/**
 * CPU time the whole machine spent busy so far, in ms summed over all CPUs (/proc/stat): minus
 * what the bench's own processes used, it shows what else ran on the shared cores meanwhile.
 */
export function machineBusyMs (): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal (guest time is already inside user).
  const busy = fields[0]! + fields[1]! + fields[2]! + fields[5]! + fields[6]! + fields[7]!
  return ticksToMs(busy)
}

/** How busy the machine was over the next ms, in % of one core (200% = both of 2 cores). */
export async function machineLoadPercent (ms = 1000): Promise<number> {
  const busy0 = machineBusyMs()
  const t0 = performance.now()
  await new Promise((resolve) => setTimeout(resolve, ms))
  return Math.round((machineBusyMs() - busy0) / (performance.now() - t0) * 100)
}

/** Nearest-rank percentile of an ascending array (p in 0..100). */
export function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil(p / 100 * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

export function machine (): Record<string, string | number> {
  const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpus()[0]?.model ?? 'unknown'
  return {
    cpus: cpus().length,
    cpuModel: model,
    memoryMiB: Math.round(totalmem() / 2 ** 20),
    node: process.version,
    date: new Date().toISOString()
  }
}

export function round (n: number, digits = 2): number {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

/** A command-line option that must be a whole number from 1 to `max`: exit 2 otherwise. */
export function positiveInt (name: string, text: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1 || n > max) {
    process.stderr.write(`--${name} must be an integer from 1 to ${max}, got '${text}'\n`)
    process.exit(2)
  }
  return n
}

/** The command line of the proxies side-by-side.ts compares (node-floor.ts, fastify-proxy.ts). */
export function comparedProxyOptions (): { port: number, upstream: string, bodyTimeoutMs: number } {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      upstream: { type: 'string' },
      'body-timeout-ms': { type: 'string', default: '0' }
    }
  })
  if (values.upstream === undefined) {
    process.stderr.write('--upstream URL is required\n')
    process.exit(2)
  }
  return { port: Number(values.port), upstream: values.upstream, bodyTimeoutMs: Number(values['body-timeout-ms']) }
}
