// Workers: small-request throughput through the gateway with `workers: 1` and `workers: 2`, in
// front of nginx answering a static 200 (a backend that costs almost nothing), loaded by wrk.
// Then the two ways N processes can share a port (node:cluster's round robin through the primary,
// or SO_REUSEPORT sockets balanced by the kernel), without the gateway, with and without keep-alive.
//
//   node bench/workers.ts [--duration 10] [--connections 50] [--rounds 2] [--part all|gateway|listen] [--json]
//
// Needs nginx and wrk (Debian packages `nginx`, `wrk`).
import { spawn, execFile } from 'node:child_process'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { cpuMs, freePort, machine, machineBusyMs, positiveInt, round, runBounded, startGateway, stopChild, ROOT, type Child } from './lib.ts'

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
    part: { type: 'string', default: 'all' }
  }
})
if (!['all', 'gateway', 'listen'].includes(args.part)) {
  process.stderr.write(`--part must be all, gateway or listen, got '${args.part}'\n`)
  process.exit(2)
}
const duration = positiveInt('duration', args.duration, 120)
const connections = positiveInt('connections', args.connections, 1000)
const rounds = positiveInt('rounds', args.rounds, 5)
const say = (text: string): void => { (args.json ? process.stderr : process.stdout).write(`${text}\n`) }

/** A process of this bench that is not the CLI: killed by PID at the end. */
function spawnTool (name: string, command: string, argv: string[]): Child {
  const proc = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  proc.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-5000) })
  return { name, process: proc, pid: proc.pid!, stderr: () => err }
}

async function startNginx (): Promise<{ child: Child, url: string, dir: string }> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'longhaul-bench-nginx-'))
  writeFileSync(join(dir, 'nginx.conf'), [
    'daemon off; master_process off; worker_processes 1; error_log stderr warn; pid nginx.pid;',
    'events { worker_connections 4096; }',
    'http { access_log off; keepalive_requests 1000000;',
    `  server { listen 127.0.0.1:${port}; location / { return 200 "ok\\n"; } } }`
  ].join('\n'))
  const child = spawnTool('nginx', 'nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')])
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    try { if ((await fetch(url)).status === 200) break } catch { /* not yet */ }
    if (i > 100) throw new Error(`nginx did not start: ${child.stderr()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { child, url, dir }
}

interface Wrk { rps: number, p50ms: number, p99ms: number, errors: number }

function wrk (url: string, extra: string[] = []): Promise<Wrk> {
  return new Promise((resolve, reject) => {
    execFile('wrk', ['-t1', `-c${connections}`, `-d${duration}s`, '--latency', ...extra, url], { timeout: (duration + 30) * 1000 }, (err, stdout) => {
      if (err !== null) return reject(err)
      const num = (re: RegExp): number => Number(re.exec(stdout)?.[1] ?? Number.NaN)
      const ms = (re: RegExp): number => {
        const m = re.exec(stdout)
        if (m === null) return Number.NaN
        return Number(m[1]) * ({ us: 0.001, ms: 1, s: 1000 }[m[2] as 'us' | 'ms' | 's'])
      }
      const errors = num(/Non-2xx or 3xx responses: (\d+)/) || 0
      const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout)
      resolve({
        rps: num(/Requests\/sec:\s+([\d.]+)/),
        p50ms: ms(/50%\s+([\d.]+)(us|ms|s)/),
        p99ms: ms(/99%\s+([\d.]+)(us|ms|s)/),
        errors: errors + (socket === null ? 0 : socket.slice(1).reduce((a, b) => a + Number(b), 0))
      })
    })
  })
}

/** CPU of a set of processes and of everything else on the machine over one wrk run, in % of one core. */
async function measured (pids: number[], run: () => Promise<Wrk>): Promise<Wrk & { cpu: number, other: number }> {
  const cpu0 = pids.reduce((a, p) => a + cpuMs(p), 0)
  const busy0 = machineBusyMs()
  const t0 = performance.now()
  const result = await run()
  const elapsed = performance.now() - t0
  const cpu = pids.reduce((a, p) => a + cpuMs(p), 0) - cpu0
  return { ...result, cpu: Math.round(cpu / elapsed * 100), other: Math.round((machineBusyMs() - busy0 - cpu) / elapsed * 100) }
}

async function gatewayRun (upstreamUrl: string, workers: number): Promise<Wrk & { cpu: number, other: number, workers: number }> {
  const gateway = await startGateway({ upstreamUrl, logLevel: 'warn', workers })
  try {
    const status = await (await fetch(`${gateway.adminUrl}/status`)).json() as { workers?: Array<{ pid: number }> }
    const pids = [gateway.pid, ...(status.workers ?? []).map((w) => w.pid)]
    await wrk(gateway.url, ['-d2s']) // warm-up
    return { ...await measured(pids, () => wrk(gateway.url)), workers }
  } finally {
    await stopChild(gateway)
  }
}

async function listenModeRun (mode: 'rr' | 'reuseport', keepAlive: boolean): Promise<Wrk & { cpu: number, other: number, mode: string, keepAlive: boolean, share: number[], connectionShare: number[] }> {
  const port = await freePort()
  const child = spawnTool(`listen-modes ${mode}`, process.execPath, [join(ROOT, 'bench', 'listen-modes.ts'), '--mode', mode, '--workers', '2', '--port', String(port)])
  let out = ''
  child.process.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  const until = Date.now() + 10_000
  while (!child.stderr().includes('listening')) {
    if (Date.now() > until) throw new Error(`listen-modes did not start: ${child.stderr()}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const pids = [child.pid, ...(await childPids(child.pid))]
  const result = await measured(pids, () => wrk(`http://127.0.0.1:${port}/`, keepAlive ? [] : ['-H', 'Connection: close']))
  const exited = new Promise((resolve) => child.process.once('exit', resolve))
  process.kill(child.pid, 'SIGTERM')
  await exited
  const counts = JSON.parse(out.trim()) as { requests: number[], connections: number[] }
  const shares = (xs: number[]): number[] => { const total = xs.reduce((a, b) => a + b, 0); return xs.map((x) => round(x / total, 3)) }
  return { ...result, mode, keepAlive, share: shares(counts.requests), connectionShare: shares(counts.connections) }
}

function childPids (pid: number): Promise<number[]> {
  return new Promise((resolve) => execFile('pgrep', ['-P', String(pid)], (_err, stdout) => resolve(stdout.trim().split('\n').filter(Boolean).map(Number))))
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]! }

runBounded((rounds * 6 * (duration + 8) + 60) * 1000, async () => {
  const nginx = await startNginx()
  try {
    say(`machine: ${JSON.stringify(machine())}; wrk -t1 -c${connections} -d${duration}s, nginx static 200 behind the gateway`)
    const gatewayRuns = []
    for (let r = 0; r < (args.part === 'listen' ? 0 : rounds); r++) {
      for (const workers of r % 2 === 0 ? [1, 2] : [2, 1]) {
        const run = await gatewayRun(nginx.url, workers)
        gatewayRuns.push({ round: r + 1, ...run })
        say(`round ${r + 1} workers ${workers}: ${Math.round(run.rps)} req/s, p50 ${round(run.p50ms)} ms, p99 ${round(run.p99ms)} ms, errors ${run.errors}, gateway CPU ${run.cpu}%, other ${run.other}%`)
      }
    }
    const one = median(gatewayRuns.filter((r) => r.workers === 1).map((r) => r.rps))
    const two = median(gatewayRuns.filter((r) => r.workers === 2).map((r) => r.rps))
    if (gatewayRuns.length > 0) say(`median: workers 1 ${Math.round(one)} req/s, workers 2 ${Math.round(two)} req/s, ×${round(two / one)}`)

    const modeRuns: Array<Awaited<ReturnType<typeof listenModeRun>>> = []
    for (let r = 0; r < (args.part === 'gateway' ? 0 : rounds); r++) {
      for (const keepAlive of [true, false]) {
        for (const mode of r % 2 === 0 ? ['rr', 'reuseport'] as const : ['reuseport', 'rr'] as const) {
          const run = await listenModeRun(mode, keepAlive)
          modeRuns.push(run)
          say(`round ${r + 1} listen ${mode.padEnd(9)} ${keepAlive ? 'keep-alive ' : 'conn-close '}: ${Math.round(run.rps)} req/s, p99 ${round(run.p99ms)} ms, requests ${run.share.join('/')}, connections ${run.connectionShare.join('/')}, CPU ${run.cpu}%, other ${run.other}%`)
        }
      }
    }
    for (const keepAlive of modeRuns.length === 0 ? [] : [true, false]) {
      const med = (mode: string): number => median(modeRuns.filter((m) => m.mode === mode && m.keepAlive === keepAlive).map((m) => m.rps))
      say(`median ${keepAlive ? 'keep-alive' : 'conn-close'}: rr ${Math.round(med('rr'))} req/s, reuseport ${Math.round(med('reuseport'))} req/s`)
    }
    if (args.json) process.stdout.write(`${JSON.stringify({ machine: machine(), duration, connections, gatewayRuns, ratio: two / one, modeRuns }, null, 2)}\n`)
    return gatewayRuns.some((r) => r.errors > 0) ? 1 : 0
  } finally {
    await stopChild(nginx.child)
    rmSync(nginx.dir, { recursive: true, force: true })
  }
})
