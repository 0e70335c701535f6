// What OpenTelemetry tracing costs per request: the same autocannon load through longhaul without
// `telemetry` and with `telemetry.otlp` (spans exported to a receiver in this process that only
// counts them), and optionally through a baseline checkout (another tree's src/cli.ts, e.g. the
// commit before tracing existed) to show that an unconfigured gateway pays nothing measurable.
// Rounds alternate the order; medians and ratios at the end.
//
//   node bench/telemetry-cost.ts [--connections 50] [--duration 8] [--rounds 3] [--baseline PATH/src/cli.ts]
import autocannon from 'autocannon'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { parseArgs } from 'node:util'
import { cpuMs, machine, positiveInt, round, runBounded, startGateway, startUpstream, type Gateway } from './lib.ts'

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '50' },
    duration: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    baseline: { type: 'string' }
  }
})
const connections = positiveInt('connections', args.connections, 1000)
const duration = positiveInt('duration', args.duration, 120)
const rounds = positiveInt('rounds', args.rounds, 10)

interface Run { target: string, rps: number, p99: number, gatewayCpuUsPerRequest: number }

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

async function measure (target: string, gateway: Gateway): Promise<Run> {
  const url = `${gateway.url}/health`
  await autocannon({ url, connections, duration: 2, timeout: 10 })
  const cpu0 = cpuMs(gateway.pid)
  const result = await autocannon({ url, connections, duration, timeout: 10 })
  const cpu = cpuMs(gateway.pid) - cpu0
  if (result.errors + result.timeouts + result.non2xx > 0) throw new Error(`${target}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx`)
  return { target, rps: round(result['2xx'] / result.duration, 0), p99: result.latency.p99, gatewayCpuUsPerRequest: round(cpu * 1000 / result['2xx'], 1) }
}

async function main (): Promise<number> {
  const info = machine()
  process.stdout.write(`telemetry cost: GET /health, ${connections} connections, ${duration} s per run, ${rounds} rounds; ${info.cpus} CPUs (${info.cpuModel}), node ${info.node}\n`)
  let spans = 0
  const receiver = http.createServer((req, res) => {
    req.on('data', (chunk: Buffer) => { spans += chunk.toString().split('"spanId"').length - 1 })
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'))
  })
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
  const otlp = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`
  const upstream = await startUpstream()
  const targets = new Map<string, Gateway>([
    ['off', await startGateway({ upstreamUrl: upstream.url, logLevel: 'warn' })],
    ['on', await startGateway({ upstreamUrl: upstream.url, logLevel: 'warn', otlpEndpoint: otlp })]
  ])
  if (args.baseline !== undefined) targets.set('baseline', await startGateway({ upstreamUrl: upstream.url, logLevel: 'warn', cli: args.baseline }))
  const runs: Run[] = []
  for (let n = 1; n <= rounds; n++) {
    const order = [...targets.keys()]
    if (n % 2 === 0) order.reverse()
    for (const target of order) {
      const run = await measure(target, targets.get(target)!)
      runs.push(run)
      process.stdout.write(`round ${n}  ${target.padEnd(8)} ${String(run.rps).padStart(7)} req/s  p99 ${String(run.p99).padStart(4)} ms  gateway CPU ${run.gatewayCpuUsPerRequest} µs/request\n`)
    }
  }
  const med = (target: string, pick: (r: Run) => number): number => median(runs.filter((r) => r.target === target).map(pick))
  const off = { rps: med('off', (r) => r.rps), cpu: med('off', (r) => r.gatewayCpuUsPerRequest) }
  for (const target of targets.keys()) {
    const rps = med(target, (r) => r.rps)
    const cpu = med(target, (r) => r.gatewayCpuUsPerRequest)
    process.stdout.write(`median ${target.padEnd(8)} ${rps} req/s (x${round(rps / off.rps, 3)} of off), ${cpu} µs gateway CPU per request (x${round(cpu / off.cpu, 3)} of off)\n`)
  }
  process.stdout.write(`spans received: ${spans}\n`)
  receiver.close()
  return 0
}

runBounded((rounds * (args.baseline === undefined ? 2 : 3) * (duration + 3) + 60) * 1000, main)
