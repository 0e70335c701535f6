// Proxy overhead: the same autocannon load against the demo upstream directly and through the
// gateway, with requests/s, latency percentiles and the gateway/direct ratios. The upstream and
// the gateway run as child processes; this process only generates load.
//
//   node bench/proxy-overhead.ts [--connections 50] [--duration 10] [--warmup 2] [--rounds 1]
//                                [--path /health] [--log-level warn|info] [--json]
import autocannon from 'autocannon'
import { createHistogram } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { cpuMs, machine, machineBusyMs, machineLoadPercent, round, runBounded, startGateway, startUpstream, positiveInt } from './lib.ts'

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '50' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '1' },
    path: { type: 'string', default: '/health' },
    'log-level': { type: 'string', default: 'warn' },
    json: { type: 'boolean', default: false }
  }
})


const connections = positiveInt('connections', args.connections, 1000)
const duration = positiveInt('duration', args.duration, 300)
const warmup = positiveInt('warmup', args.warmup, 60)
const rounds = positiveInt('rounds', args.rounds, 10)
if (args['log-level'] !== 'warn' && args['log-level'] !== 'info') {
  process.stderr.write(`--log-level must be warn or info, got '${args['log-level']}'\n`)
  process.exit(2)
}
const logLevel = args['log-level'] as 'warn' | 'info'
if (!args.path.startsWith('/')) {
  process.stderr.write(`--path must start with /, got '${args.path}'\n`)
  process.exit(2)
}
// With --json the record goes to stdout alone, so it can be piped; the summary goes to stderr.
const say = (text: string): void => { (args.json ? process.stderr : process.stdout).write(`${text}\n`) }

interface Run {
  target: 'direct' | 'gateway'
  round: number
  requests: number
  rps: number
  /** From every 2xx response time, at microsecond resolution. */
  latencyMs: { p50: number, p99: number, p99_9: number, max: number }
  /** autocannon's own histogram (whole milliseconds), for comparison with its CLI output. */
  autocannonLatencyMs: { p50: number, p99: number, p99_9: number }
  errors: number
  timeouts: number
  non2xx: number
  /** CPU used during the measured run, in % of one core; other = every other process on the machine. */
  cpuPercent: { upstream: number, gateway: number, loadGenerator: number, other: number }
}

async function measure (target: Run['target'], roundNo: number, url: string, pids: { upstream: number, gateway: number }): Promise<Run> {
  // A warm-up of its own (not autocannon's `warmup`) so the CPU readings cover the measured run only.
  await autocannon({ url, connections, duration: warmup, timeout: 10 })
  const hist = createHistogram({ lowest: 1, highest: 60_000_000, figures: 3 })
  const cpu0 = { upstream: cpuMs(pids.upstream), gateway: cpuMs(pids.gateway), self: process.cpuUsage(), machine: machineBusyMs() }
  const started = performance.now()
  const instance = autocannon({ url, connections, duration, timeout: 10 })
  instance.on('response', (_client, status, _bytes, ms) => {
    if (status >= 200 && status < 300) hist.record(Math.max(1, Math.round(ms * 1000)))
  })
  const result = await instance
  const wallMs = performance.now() - started
  const self = process.cpuUsage(cpu0.self)
  const used = {
    upstream: cpuMs(pids.upstream) - cpu0.upstream,
    gateway: cpuMs(pids.gateway) - cpu0.gateway,
    loadGenerator: (self.user + self.system) / 1000,
    machine: machineBusyMs() - cpu0.machine
  }
  const pct = (ms: number): number => round(ms / wallMs * 100, 0)
  const q = (p: number): number => round(hist.percentile(p) / 1000, 2)
  return {
    target,
    round: roundNo,
    requests: result['2xx'],
    rps: round(result['2xx'] / result.duration, 0),
    latencyMs: { p50: q(50), p99: q(99), p99_9: q(99.9), max: round(hist.max / 1000, 2) },
    autocannonLatencyMs: { p50: result.latency.p50, p99: result.latency.p99, p99_9: result.latency.p99_9 },
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    cpuPercent: {
      upstream: pct(used.upstream),
      gateway: pct(used.gateway),
      loadGenerator: pct(used.loadGenerator),
      other: pct(Math.max(0, used.machine - used.upstream - used.gateway - used.loadGenerator))
    }
  }
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

function line (r: Run): string {
  const c = r.cpuPercent
  return `round ${r.round}  ${r.target.padEnd(7)} ${String(r.rps).padStart(7)} req/s  ` +
    `p50 ${r.latencyMs.p50.toFixed(2).padStart(6)} ms  p99 ${r.latencyMs.p99.toFixed(2).padStart(6)} ms  p99.9 ${r.latencyMs.p99_9.toFixed(2).padStart(6)} ms  ` +
    `cpu: upstream ${c.upstream}%  gateway ${c.gateway}%  load generator ${c.loadGenerator}%  other ${c.other}%` +
    (r.errors + r.timeouts + r.non2xx > 0 ? `  ERRORS ${r.errors} timeouts ${r.timeouts} non-2xx ${r.non2xx}` : '')
}

async function main (): Promise<number> {
  const info = machine()
  say(`longhaul proxy overhead: GET ${args.path}, ${connections} connections, ${duration} s per run after a ${warmup} s warm-up, ${rounds} round(s), gateway log level ${logLevel}`)
  say(`machine: ${info.cpus} CPUs (${info.cpuModel}), ${info.memoryMiB} MiB, node ${info.node}; the upstream, the gateway and this load generator share these CPUs`)
  const idleLoad = await machineLoadPercent()
  say(`before starting: the machine was ${idleLoad}% busy (% of one core) with processes that are not this bench's`)
  const upstream = await startUpstream()
  const gateway = await startGateway({ upstreamUrl: upstream.url, logLevel })
  const pids = { upstream: upstream.pid, gateway: gateway.pid }
  const urls = { direct: `${upstream.url}${args.path}`, gateway: `${gateway.url}${args.path}` }
  const runs: Run[] = []
  for (let n = 1; n <= rounds; n++) {
    // Alternate the order so that neither target always runs on a warmer machine.
    const order: Array<Run['target']> = n % 2 === 1 ? ['direct', 'gateway'] : ['gateway', 'direct']
    for (const target of order) {
      const run = await measure(target, n, urls[target], pids)
      runs.push(run)
      say(line(run))
    }
  }
  const of = (target: Run['target']) => runs.filter((r) => r.target === target)
  const summary = (target: Run['target']) => ({
    rps: median(of(target).map((r) => r.rps)),
    p50: median(of(target).map((r) => r.latencyMs.p50)),
    p99: median(of(target).map((r) => r.latencyMs.p99)),
    p99_9: median(of(target).map((r) => r.latencyMs.p99_9))
  })
  const direct = summary('direct')
  const through = summary('gateway')
  const ratio = {
    rps: round(through.rps / direct.rps, 3),
    p50: round(through.p50 / direct.p50, 2),
    p99: round(through.p99 / direct.p99, 2),
    p99_9: round(through.p99_9 / direct.p99_9, 2)
  }
  const label = rounds > 1 ? `median of ${rounds}` : 'result'
  say(`${label}: direct  ${direct.rps} req/s  p50 ${direct.p50} ms  p99 ${direct.p99} ms  p99.9 ${direct.p99_9} ms`)
  say(`${label}: gateway ${through.rps} req/s  p50 ${through.p50} ms  p99 ${through.p99} ms  p99.9 ${through.p99_9} ms`)
  say(`gateway/direct: requests/s ×${ratio.rps}  p50 ×${ratio.p50}  p99 ×${ratio.p99}  p99.9 ×${ratio.p99_9}`)
  const failed = runs.filter((r) => r.errors + r.timeouts + r.non2xx > 0)
  if (failed.length > 0) say(`FAILED: ${failed.length} run(s) had errors, timeouts or non-2xx responses`)
  if (args.json) {
    process.stdout.write(`${JSON.stringify({
      bench: 'proxy-overhead',
      machine: info,
      loadBeforeStartPercent: idleLoad,
      settings: { path: args.path, connections, durationS: duration, warmupS: warmup, rounds, gatewayLogLevel: logLevel, pipelining: 1 },
      runs,
      direct,
      gateway: through,
      ratio,
      ok: failed.length === 0
    })}\n`)
  }
  return failed.length === 0 ? 0 : 1
}

runBounded(rounds * 2 * (duration + warmup + 15) * 1000 + 60_000, main)
