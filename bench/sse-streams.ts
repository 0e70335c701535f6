// Many concurrent SSE streams through the gateway, over HTTP/1.1 (one connection per stream, as
// N independent clients would have) and over HTTP/2 (h2c, 100 streams per session): the
// gateway's memory per open stream, and how late each event reaches the client.
//
//   node bench/sse-streams.ts [--streams 2000] [--per-session 100] [--events 20] [--interval-ms 1000]
//                             [--protocols direct,http1,h2c] [--json]
//
// The upstream is a child process of its own (stream-upstream.ts): each stream sends
// `--events` events `--interval-ms` apart, every event carrying the instant it was written
// (performance.timeOrigin + now(), comparable across processes on one machine). Streams are
// phased evenly over one interval, so the gateway carries a steady N / interval events a second
// rather than one burst. Lag = arrival at the client − write at the upstream. `direct` runs the
// same load without the gateway: the floor that the client and upstream processes set.
// Memory: the gateway's RSS (/proc) with every stream open, minus its RSS before the first one,
// divided by the streams; a fresh gateway per protocol.
import http from 'node:http'
import http2 from 'node:http2'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { cpuMs, freePort, machine, percentile, rssKiB, round, runBounded, ROOT, positiveInt } from './lib.ts'

const { values: args } = parseArgs({
  options: {
    streams: { type: 'string', default: '2000' },
    'per-session': { type: 'string', default: '100' },
    events: { type: 'string', default: '20' },
    'interval-ms': { type: 'string', default: '1000' },
    protocols: { type: 'string', default: 'direct,http1,h2c' },
    json: { type: 'boolean', default: false }
  }
})

const now = (): number => performance.timeOrigin + performance.now()


const children = new Set<ChildProcess>()
process.once('exit', () => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL') })

function spawnNode (argv: string[]): ChildProcess {
  const child = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  child.once('exit', () => children.delete(child))
  child.stderr!.on('data', () => {})
  return child
}

async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

async function startUpstream (): Promise<{ child: ChildProcess, port: number }> {
  const child = spawnNode([join(ROOT, 'bench', 'stream-upstream.ts')])
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve(Number(line)))
    child.once('exit', (code) => reject(new Error(`upstream exited with ${code}`)))
  })
  return { child, port }
}

/** The gateway with an HTTP/1.1 and an h2c listener; ready once /readyz says 200. */
async function startGateway (upstreamPort: number): Promise<{ child: ChildProcess, h1: number, h2c: number, dir: string }> {
  const [h1, h2c, admin] = [await freePort(), await freePort(), await freePort()]
  const dir = mkdtempSync(join(tmpdir(), 'longhaul-bench-sse-'))
  const config = join(dir, 'longhaul.yaml')
  writeFileSync(config, [
    'listen:',
    `  - address: 127.0.0.1:${h1}`,
    `  - address: 127.0.0.1:${h2c}`,
    '    protocol: h2c',
    `admin: { address: 127.0.0.1:${admin} }`,
    'log: { level: warn }',
    'upstreams:',
    `  sse: { endpoints: [http://127.0.0.1:${upstreamPort}], maxConnectionsPerEndpoint: 10000 }`,
    'routes:',
    '  - name: sse',
    '    upstream: sse',
    '    timeouts: { request: 10m, streamIdle: 1m }',
    'drain: { delay: 0s, timeout: 2s }',
    ''
  ].join('\n'))
  const child = spawnNode([join(ROOT, 'src', 'cli.ts'), 'serve', '--config', config])
  const until = Date.now() + 15_000
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${admin}/readyz`)
      await res.arrayBuffer()
      if (res.status === 200) break
    } catch { /* not yet */ }
    if (Date.now() > until || child.exitCode !== null) throw new Error('gateway did not start')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { child, h1, h2c, dir }
}

interface Run {
  protocol: string
  streams: number
  completed: number
  events: number
  lagMs: { p50: number, p90: number, p99: number, max: number }
  rssBeforeMiB: number | null
  rssOpenMiB: number | null
  kibPerStream: number | null
  gatewayCpuPercent: number | null
}

/** Parses `data: <ms>` events out of a growing text; returns the lags seen and the rest. */
function collect (text: string, lags: number[]): string {
  let at = text.indexOf('\n\n')
  let start = 0
  const arrived = now()
  while (at !== -1) {
    const line = text.slice(start, at)
    if (line.startsWith('data: ')) lags.push(arrived - Number(line.slice(6)))
    start = at + 2
    at = text.indexOf('\n\n', start)
  }
  return text.slice(start)
}

async function runLoad (kind: 'http1' | 'h2c', label: string, port: number, gatewayPid: number | null, n: number, perSession: number, events: number, intervalMs: number): Promise<Run> {
  const lags: number[] = []
  let completed = 0
  const rssBefore = gatewayPid === null ? null : rssKiB(gatewayPid)
  // Every stream is open before the first event; then each sends on its own phase.
  const startAt = now() + 3000 + n * 2
  const path = (i: number): string => `/stream?events=${events}&interval=${intervalMs}&start=${(startAt + (i * intervalMs) / n).toFixed(3)}`
  const done: Array<Promise<void>> = []
  const sessions: http2.ClientHttp2Session[] = []
  for (let i = 0; i < n; i++) {
    if (kind === 'h2c') {
      if (i % perSession === 0) sessions.push(http2.connect(`http://127.0.0.1:${port}`).on('error', () => {}))
      const session = sessions.at(-1)!
      done.push(new Promise((resolve) => {
        const stream = session.request({ ':path': path(i) })
        let rest = ''
        stream.setEncoding('utf8')
        stream.on('data', (d: string) => { rest = collect(rest + d, lags) })
        stream.on('end', () => { completed++ })
        stream.on('error', () => {})
        stream.on('close', () => resolve())
      }))
    } else {
      done.push(new Promise((resolve) => {
        const req = http.get({ host: '127.0.0.1', port, path: path(i), agent: false }, (res) => {
          let rest = ''
          res.setEncoding('utf8')
          res.on('data', (d: string) => { rest = collect(rest + d, lags) })
          res.on('end', () => { if (res.complete) completed++ })
          res.on('close', () => resolve())
        })
        req.on('error', () => resolve())
      }))
    }
    // open at a bounded pace, so the open phase is not one SYN flood
    if (i % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 10))
  }
  // RSS with everything open, sampled in the middle of the run, and the gateway's CPU over it.
  let rssOpen: number | null = null
  let cpu: number | null = null
  if (gatewayPid !== null) {
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, startAt - now()) + intervalMs * Math.min(5, events / 2)))
    rssOpen = rssKiB(gatewayPid)
    const t0 = performance.now()
    const c0 = cpuMs(gatewayPid)
    await new Promise((resolve) => setTimeout(resolve, intervalMs * 2))
    cpu = (cpuMs(gatewayPid) - c0) / (performance.now() - t0) * 100
  }
  await Promise.all(done)
  for (const s of sessions) s.close()
  lags.sort((a, b) => a - b)
  return {
    protocol: label,
    streams: n,
    completed,
    events: lags.length,
    lagMs: { p50: round(percentile(lags, 50)), p90: round(percentile(lags, 90)), p99: round(percentile(lags, 99)), max: round(lags.at(-1) ?? Number.NaN) },
    rssBeforeMiB: rssBefore === null ? null : round(rssBefore / 1024, 1),
    rssOpenMiB: rssOpen === null ? null : round(rssOpen / 1024, 1),
    kibPerStream: rssBefore === null || rssOpen === null ? null : round((rssOpen - rssBefore) / n, 1),
    gatewayCpuPercent: cpu === null ? null : Math.round(cpu)
  }
}

async function main (): Promise<number> {
  const n = positiveInt('streams', args.streams)
  const perSession = positiveInt('per-session', args['per-session'])
  const events = positiveInt('events', args.events)
  const intervalMs = positiveInt('interval-ms', args['interval-ms'])
  const protocols = args.protocols.split(',')
  const say = (text: string): void => { (args.json ? process.stderr : process.stdout).write(`${text}\n`) }
  const runs: Run[] = []
  const upstream = await startUpstream()
  try {
    for (const protocol of protocols) {
      if (protocol === 'direct') {
        say(`direct: ${n} streams to the upstream, no gateway`)
        runs.push(await runLoad('http1', 'direct HTTP/1.1 (no gateway)', upstream.port, null, n, perSession, events, intervalMs))
        continue
      }
      if (protocol !== 'http1' && protocol !== 'h2c') throw new Error(`unknown protocol ${protocol}`)
      const gw = await startGateway(upstream.port)
      try {
        // warm-up: a few streams, so the baseline RSS includes what the first requests allocate
        const port = protocol === 'h2c' ? gw.h2c : gw.h1
        await runLoad(protocol, 'warm-up', port, null, 20, perSession, 2, 100)
        say(`${protocol}: ${n} streams through the gateway${protocol === 'h2c' ? `, ${perSession} per session` : ', one connection each'}`)
        const label = protocol === 'h2c' ? `HTTP/2 h2c (${perSession} streams/session)` : 'HTTP/1.1 (1 connection/stream)'
        runs.push(await runLoad(protocol, label, port, gw.child.pid!, n, perSession, events, intervalMs))
      } finally {
        await stop(gw.child)
        rmSync(gw.dir, { recursive: true, force: true })
      }
    }
  } finally {
    await stop(upstream.child)
  }
  const report = { machine: machine(), streams: n, events, intervalMs, runs }
  if (args.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
  } else {
    say('')
    say('| protocol | streams completed | events | lag p50 | lag p90 | lag p99 | lag max | gateway RSS before → open | per stream | gateway CPU |')
    say('|---|---|---|---|---|---|---|---|---|---|')
    for (const r of runs) {
      const rss = r.rssBeforeMiB === null ? '—' : `${r.rssBeforeMiB} → ${r.rssOpenMiB} MiB`
      say(`| ${r.protocol} | ${r.completed}/${r.streams} | ${r.events} | ${r.lagMs.p50} ms | ${r.lagMs.p90} ms | ${r.lagMs.p99} ms | ${r.lagMs.max} ms | ${rss} | ${r.kibPerStream === null ? '—' : `${r.kibPerStream} KiB`} | ${r.gatewayCpuPercent === null ? '—' : `${r.gatewayCpuPercent}%`} |`)
    }
  }
  return runs.every((r) => r.completed === r.streams) ? 0 : 1
}

runBounded(15 * 60_000, main)
