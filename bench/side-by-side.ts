// longhaul side by side with the Node floor (node-floor.ts), @fastify/http-proxy (fastify-proxy.ts)
// and nginx (one worker), each pinned to the same CPU, in alternating order, with ratios:
//   throughput  small requests (GET /health), wrk, access log on for all four
//   streams     N concurrent SSE streams at 1 event/s (--small, --large): every stream served?
//               idle RSS, memory per open stream, event lag, CPU
//   stalls      N streams that stall at one instant, idle limit 1 s (longhaul streamIdle, nginx
//               proxy_read_timeout, undici's bodyTimeout in the two Node proxies): cut lateness,
//               never early, never a clean end
//
//   npm run bench:side-by-side -- [--rounds 2] [--scenarios throughput,streams,stalls]
//        [--targets longhaul,node-floor,fastify,nginx] [--small 2000] [--large 10000]
//        [--stall 2000] [--duration 10] [--connections 50] [--proxy-cpu 0] [--load-cpu 1] [--json]
//        [--peer-node-flags=--max-semi-space-size=8]
//
// --peer-node-flags: Node flags for the Node floor and @fastify/http-proxy (default none: Node's
// defaults, as such a proxy usually runs). longhaul runs as bin/longhaul starts it, with its flags.
//
// Needs wrk and nginx (Debian: apt-get install wrk nginx) and taskset. The proxy under test runs
// alone on --proxy-cpu; the upstream (stream-upstream.ts), wrk and this process share --load-cpu.
// Each proxy is a fresh process per scenario, its stdout (the access log) going to a file.
import http from 'node:http'
import { execFileSync, spawnSync } from 'node:child_process'
import { openSync, closeSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { alive, cpuMs, freePort, machine, machineBusyMs, percentile, positiveInt, round, rssKiB, runBounded, spawnProcess, stopChild, tempDir, ROOT, type Child } from './lib.ts'

const TARGETS = ['longhaul', 'node-floor', 'fastify', 'nginx'] as const
type Target = typeof TARGETS[number]
type Scenario = 'throughput' | 'streams' | 'stalls'

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    scenarios: { type: 'string', default: 'throughput,streams,stalls' },
    targets: { type: 'string', default: TARGETS.join(',') },
    small: { type: 'string', default: '2000' },
    large: { type: 'string', default: '10000' },
    stall: { type: 'string', default: '2000' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    'proxy-cpu': { type: 'string', default: '0' },
    'load-cpu': { type: 'string', default: '1' },
    'peer-node-flags': { type: 'string', default: '' },
    json: { type: 'boolean', default: false }
  }
})
const rounds = positiveInt('rounds', args.rounds, 10)
const duration = positiveInt('duration', args.duration, 120)
const connections = positiveInt('connections', args.connections, 1000)
const stallStreams = positiveInt('stall', args.stall, 20_000)
const scenarios = args.scenarios.split(',') as Scenario[]
const targets = args.targets.split(',') as Target[]
for (const s of scenarios) if (!['throughput', 'streams', 'stalls'].includes(s)) usage(`unknown scenario '${s}'`)
for (const t of targets) if (!TARGETS.includes(t)) usage(`unknown target '${t}' (${TARGETS.join(', ')})`)
const say = (text: string): void => { (args.json ? process.stderr : process.stdout).write(`${text}\n`) }

function usage (message: string): never {
  process.stderr.write(`${message}\n`)
  process.exit(2)
}

/** Open files a process may have (soft, hard), from /proc/self/limits. */
function fileLimits (): { soft: number, hard: number } {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
  const n = (s: string | undefined): number => s === undefined || s === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(s)
  return { soft: n(m?.[1]), hard: n(m?.[2]) }
}

// A proxy holds two descriptors per stream (client and upstream connection).
const limits = fileLimits()
const maxStreams = Math.floor((limits.soft - 200) / 2)
const streamCounts = [positiveInt('small', args.small, 100_000), positiveInt('large', args.large, 100_000)].map((n) => Math.min(n, maxStreams))

const now = (): number => performance.timeOrigin + performance.now()
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const pinned = (cpu: string, command: string, argv: string[]): [string, string[]] => ['taskset', ['-c', cpu, command, ...argv]]

// ---- the proxies ----

interface Proxy {
  target: Target
  url: string
  /** Every process of the proxy (nginx: master and worker). */
  pids: () => number[]
  stop: () => Promise<void>
}

function childPids (pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch { return [] }
}

async function waitReady (url: string, child: Child): Promise<void> {
  const until = Date.now() + 20_000
  for (;;) {
    if (!alive(child.process)) throw new Error(`${child.name} exited before it was ready: ${child.stderr()}`)
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) })
      await res.arrayBuffer()
      if (res.status === 200) return
    } catch { /* not yet */ }
    if (Date.now() > until) throw new Error(`${child.name} not ready within 20 s: ${child.stderr()}`)
    await sleep(50)
  }
}

async function startProxy (target: Target, upstreamUrl: string, idleLimit: boolean): Promise<Proxy> {
  const port = await freePort()
  const dir = tempDir(`longhaul-side-${target}-`)
  const log = openSync(join(dir, 'access.log'), 'a')
  let child: Child
  if (target === 'longhaul') {
    const admin = await freePort()
    writeFileSync(join(dir, 'longhaul.yaml'), [
      `listen: [{ address: 127.0.0.1:${port} }]`,
      `admin: { address: 127.0.0.1:${admin} }`,
      'log: { level: info }',
      `upstreams: { up: { endpoints: [${upstreamUrl}] } }`,
      'routes:',
      `  - { name: all, upstream: up, timeouts: { streamIdle: ${idleLimit ? '1s' : '10m'}, request: none, firstByte: 1m } }`,
      'drain: { delay: 0s, timeout: 1s }',
      ''
    ].join('\n'))
    // As users run it: bin/longhaul (Node 24 from node_modules, the compile cache on).
    child = spawnProcess(target, ...pinned(args['proxy-cpu'], join(ROOT, 'bin', 'longhaul'), ['serve', '--config', join(dir, 'longhaul.yaml')]), log)
  } else if (target === 'nginx') {
    writeFileSync(join(dir, 'nginx.conf'), [
      'daemon off;', 'master_process on;', 'worker_processes 1;', 'user root;',
      `pid ${dir}/nginx.pid;`, `error_log ${dir}/error.log warn;`,
      `worker_rlimit_nofile ${limits.soft};`,
      `events { worker_connections ${limits.soft}; }`,
      'http {',
      `  access_log ${dir}/access.log;`,
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir}/${t};`),
      `  upstream up { server ${new URL(upstreamUrl).host}; keepalive 1024; }`,
      `  server { listen 127.0.0.1:${port} backlog=4096; keepalive_timeout 620s; keepalive_requests 1000000; location / {`,
      '    proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off;',
      `    proxy_read_timeout ${idleLimit ? '1s' : '600s'};`,
      '  } }',
      '}', ''
    ].join('\n'))
    child = spawnProcess(target, ...pinned(args['proxy-cpu'], 'nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')]), log)
  } else {
    const script = join(ROOT, 'bench', target === 'node-floor' ? 'node-floor.ts' : 'fastify-proxy.ts')
    const flags = args['peer-node-flags'].split(' ').filter((f) => f !== '')
    child = spawnProcess(target, ...pinned(args['proxy-cpu'], process.execPath, [...flags, script, '--port', String(port), '--upstream', upstreamUrl, '--body-timeout-ms', idleLimit ? '1000' : '0']), log)
  }
  closeSync(log)
  const url = `http://127.0.0.1:${port}`
  await waitReady(url, child)
  return {
    target,
    url,
    pids: () => [child.pid, ...childPids(child.pid)],
    stop: () => stopChild(child)
  }
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0)
const rssOf = (p: Proxy): number => sum(p.pids().map(rssKiB))
const cpuOf = (p: Proxy): number => sum(p.pids().map(cpuMs))

// ---- throughput ----

interface ThroughputRun { target: Target, round: number, rps: number, p50Ms: number, p99Ms: number, errors: number, proxyCpu: number, machineBusy: number }

function wrkMs (text: string, label: string): number {
  const m = new RegExp(`^\\s*${label}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(text)
  if (m === null) return Number.NaN
  return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1)
}

async function wrk (url: string, seconds: number): Promise<string> {
  const child = spawnProcess('wrk', ...pinned(args['load-cpu'], 'wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', url]))
  let out = ''
  child.process.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  const code = await new Promise<number | null>((resolve) => child.process.once('exit', resolve))
  if (code !== 0) throw new Error(`wrk exited with ${code}: ${child.stderr()}`)
  return out
}

async function throughput (p: Proxy, roundNo: number): Promise<ThroughputRun> {
  await wrk(`${p.url}/health`, 2)
  const cpu0 = cpuOf(p)
  const busy0 = machineBusyMs()
  const t0 = performance.now()
  const out = await wrk(`${p.url}/health`, duration)
  const wall = performance.now() - t0
  const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) + sum([...out.matchAll(/(?:connect|read|write|timeout) (\d+)/g)].map((m) => Number(m[1])))
  return {
    target: p.target,
    round: roundNo,
    rps: Math.round(Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN)),
    p50Ms: round(wrkMs(out, '50'), 2),
    p99Ms: round(wrkMs(out, '99'), 2),
    errors,
    proxyCpu: Math.round((cpuOf(p) - cpu0) / wall * 100),
    machineBusy: Math.round((machineBusyMs() - busy0) / wall * 100)
  }
}

// ---- streams at 1 event/s ----

interface StreamsRun {
  target: Target | 'direct', round: number, streams: number, served: number, openMs: number,
  idleRssMiB: number | null, openRssMiB: number | null, kibPerStream: number | null,
  lagMs: { p50: number, p99: number, max: number, n: number }, proxyCpu: number | null
}

const EVENTS = 10

interface Opened { done: Promise<boolean>, close: () => void }

/**
 * One SSE stream, one connection (as N independent clients have): resolves `opened` once
 * connected (a proxy may hold the response headers until the first event); `done` says whether
 * it ended cleanly with every event. onEvent gets each event's write instant (upstream clock)
 * and its arrival.
 */
function openStream (port: number, path: string, onEvent: (writtenAt: number, arrivedAt: number) => void, opened: () => void): Opened {
  let req: http.ClientRequest | null = null
  const done = new Promise<boolean>((resolve) => {
    req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let rest = ''
      let events = 0
      res.setEncoding('latin1')
      res.on('data', (d: string) => {
        const arrived = now()
        rest += d
        let at = rest.indexOf('\n\n')
        while (at !== -1) {
          const record = rest.slice(0, at)
          rest = rest.slice(at + 2)
          if (record.startsWith('data: ')) { events++; onEvent(Number(record.slice(6)), arrived) }
          at = rest.indexOf('\n\n')
        }
      })
      res.on('error', () => {})
      res.on('close', () => resolve(res.complete && events === EVENTS))
    })
    req.on('error', () => { opened(); resolve(false) })
    req.on('socket', (socket) => socket.once('connect', opened))
  })
  return { done, close: () => req?.destroy() }
}

/** Opens n streams, at most `concurrency` waiting for their headers at once. */
async function openMany (n: number, concurrency: number, open: (i: number, opened: () => void) => void): Promise<void> {
  await new Promise<void>((resolve) => {
    let next = 0
    let waiting = 0
    let finished = 0
    const pump = (): void => {
      while (waiting < concurrency && next < n) {
        waiting++
        let once = false
        open(next++, () => {
          if (once) return
          once = true
          waiting--
          if (++finished === n) resolve()
          else pump()
        })
      }
    }
    pump()
  })
}

async function warmUp (url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const res = await fetch(`${url}${i % 2 === 0 ? '/health' : `/stream?events=2&interval=10&start=${now()}`}`, { signal: AbortSignal.timeout(10_000) })
    await res.arrayBuffer()
  }
}

async function streams (p: Proxy | null, upstreamUrl: string, n: number, roundNo: number): Promise<StreamsRun> {
  const url = p?.url ?? upstreamUrl
  const port = Number(new URL(url).port)
  if (p !== null) await warmUp(url)
  await sleep(1000)
  const idle = p === null ? null : rssOf(p)
  const lags: number[] = []
  // Every stream is opened first, however long that takes; then the upstream is told to go, and
  // each stream sends on its own phase of the second.
  const run = `streams-${++runs}`
  const t0 = now()
  const handles: Opened[] = []
  await openMany(n, 200, (i, opened) => {
    const path = `/stream?events=${EVENTS}&interval=1000&run=${run}&phase=${(i * 1000 / n).toFixed(3)}`
    handles.push(openStream(port, path, (written, arrived) => lags.push(arrived - written), opened))
  })
  const startAt = await go(upstreamUrl, run, n, 1000)
  // Until every stream had reached the upstream.
  const openMs = Math.round(startAt - 1000 - t0)
  // Memory and CPU with every stream open and sending, two seconds into the events.
  await sleep(Math.max(0, startAt - now()) + 2000)
  const open = p === null ? null : rssOf(p)
  const cpu0 = p === null ? 0 : cpuOf(p)
  const c0 = performance.now()
  await sleep(3000)
  const cpu = p === null ? null : Math.round((cpuOf(p) - cpu0) / (performance.now() - c0) * 100)
  // A stream not done 10 s after its last event is closed, and counted as not served.
  const bound = setTimeout(() => { for (const h of handles) h.close() }, Math.max(0, startAt + EVENTS * 1000 - now()) + 10_000)
  const results = await Promise.all(handles.map((h) => h.done))
  clearTimeout(bound)
  lags.sort((a, b) => a - b)
  return {
    target: p?.target ?? 'direct',
    round: roundNo,
    streams: n,
    served: results.filter(Boolean).length,
    openMs,
    idleRssMiB: idle === null ? null : round(idle / 1024, 1),
    openRssMiB: open === null ? null : round(open / 1024, 1),
    kibPerStream: idle === null || open === null ? null : round((open - idle) / n, 1),
    lagMs: { p50: round(percentile(lags, 50), 1), p99: round(percentile(lags, 99), 1), max: round(lags.at(-1) ?? Number.NaN, 1), n: lags.length },
    proxyCpu: cpu
  }
}

let runs = 0

/**
 * Waits (at most 60 s) until the upstream holds all n streams of the run, then tells it that they
 * start in `inMs`; returns that instant.
 */
async function go (upstreamUrl: string, run: string, n: number, inMs: number): Promise<number> {
  const until = performance.now() + 60_000
  for (;;) {
    const res = await fetch(`${upstreamUrl}/waiting?run=${run}`, { signal: AbortSignal.timeout(10_000) })
    const waiting = Number(await res.text())
    if (waiting >= n) break
    if (performance.now() > until) { say(`  only ${waiting} of ${n} streams reached the upstream within 60 s; going anyway`); break }
    await sleep(100)
  }
  const at = now() + inMs
  const res = await fetch(`${upstreamUrl}/go?run=${run}&at=${at.toFixed(3)}`, { signal: AbortSignal.timeout(10_000) })
  await res.text()
  return at
}

// ---- streams that stall at one instant ----

interface StallsRun {
  target: Target, round: number, streams: number, ended: number, cleanEnds: number, neverCut: number, early: number,
  errorRecords: number, latenessMs: { min: number, p50: number, p99: number, max: number }
}

async function stalls (p: Proxy, upstreamUrl: string, n: number, roundNo: number): Promise<StallsRun> {
  await warmUp(p.url)
  const port = Number(new URL(p.url).port)
  const run = `stalls-${++runs}`
  const lateness: number[] = []
  let cleanEnds = 0
  let neverCut = 0
  let errorRecords = 0
  const ends: Array<Promise<void>> = []
  const pending = new Set<http.ClientRequest>()
  await openMany(n, 200, (_i, opened) => {
    ends.push(new Promise<void>((resolve) => {
      const req: http.ClientRequest = http.get({ host: '127.0.0.1', port, path: `/stream?events=1&interval=1000&hold=1&run=${run}&phase=0`, agent: false }, (res) => {
        let eventAt: number | null = null
        let text = ''
        res.setEncoding('latin1')
        res.on('data', (d: string) => {
          if (text.length < 8192) text += d
          // The event, not the comments that kept the stream alive until it.
          if (eventAt === null && text.includes('data: ')) eventAt = performance.now()
        })
        res.on('error', () => {})
        res.on('close', () => {
          // Not cut within the bound: closed by this client, counted as never cut.
          if (!pending.delete(req)) return resolve()
          // A clean end is still timed: the client cannot tell it from the upstream's own end.
          if (res.complete) cleanEnds++
          if (eventAt !== null) lateness.push(performance.now() - eventAt - 1000)
          if (text.includes('event: error\n')) errorRecords++
          resolve()
        })
      })
      req.on('error', () => { pending.delete(req); opened(); resolve() })
      req.on('socket', (socket) => socket.once('connect', opened))
      pending.add(req)
    }))
  })
  const stallAt = await go(upstreamUrl, run, n, 1500)
  const bound = setTimeout(() => {
    neverCut = pending.size
    const left = [...pending]
    pending.clear()
    for (const req of left) req.destroy()
  }, Math.max(0, stallAt - now()) + 8000)
  await Promise.all(ends)
  clearTimeout(bound)
  lateness.sort((a, b) => a - b)
  return {
    target: p.target,
    round: roundNo,
    streams: n,
    ended: lateness.length,
    cleanEnds,
    neverCut,
    // The client reads its event a little after the proxy does: under −5 ms the cut came early.
    early: lateness.filter((l) => l < -5).length,
    errorRecords,
    latenessMs: { min: round(lateness[0] ?? Number.NaN, 1), p50: round(percentile(lateness, 50), 1), p99: round(percentile(lateness, 99), 1), max: round(lateness.at(-1) ?? Number.NaN, 1) }
  }
}

// ---- report ----

/** The median; of an even count, the mean of the middle two (of two rounds, not the lower one). */
function median (xs: number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : round((s[mid - 1]! + s[mid]!) / 2, 2)
}
const ratio = (a: number, b: number): string => Number.isFinite(a / b) ? `×${round(a / b, 2)}` : '–'

async function withProxyOnce (t: Target, upstreamUrl: string): Promise<void> {
  const p = await startProxy(t, upstreamUrl, false)
  await p.stop()
}

async function main (): Promise<number> {
  process.env.NODE_COMPILE_CACHE ??= join(tmpdir(), 'node-compile-cache')
  const info = machine()
  say(`side by side: ${targets.join(', ')}; proxy on CPU ${args['proxy-cpu']}, upstream + load on CPU ${args['load-cpu']}; ${rounds} rounds, order alternating`)
  say(`machine: ${info.cpus} CPUs (${info.cpuModel}), ${info.memoryMiB} MiB, node ${info.node}, ${info.date}; open files soft ${limits.soft} / hard ${limits.hard}`)
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim()
  say(`commit ${commit}; nginx ${/nginx\/(\S+)/.exec(spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr)?.[1] ?? 'not found'}`)
  if (args['peer-node-flags'] !== '') say(`Node floor and @fastify/http-proxy run with: ${args['peer-node-flags']}`)
  if (streamCounts.some((n, i) => n < [Number(args.small), Number(args.large)][i]!)) say(`note: ${maxStreams} streams at most: a proxy holds 2 descriptors per stream and the open files limit is ${limits.soft}`)
  // This process is the load generator: on the load CPU with the upstream.
  execFileSync('taskset', ['-pc', args['load-cpu'], String(process.pid)], { stdio: 'ignore' })
  const upstream = spawnProcess('upstream', ...pinned(args['load-cpu'], process.execPath, [join(ROOT, 'bench', 'stream-upstream.ts')]))
  const upstreamPort = await new Promise<number>((resolve, reject) => {
    createInterface({ input: upstream.process.stdout! }).once('line', (line) => resolve(Number(line)))
    upstream.process.once('exit', (code) => reject(new Error(`upstream exited with ${code}: ${upstream.stderr()}`)))
  })
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}`
  // Every Node proxy here is TypeScript run by type stripping: with Node's compile cache primed by
  // one start of each, none of them holds the stripper in memory (bin/longhaul turns the cache
  // on for longhaul; this does it for the two others).
  for (const t of targets) if (t !== 'nginx') await withProxyOnce(t, upstreamUrl)
  const report = { machine: info, commit, throughput: [] as ThroughputRun[], streams: [] as StreamsRun[], stalls: [] as StallsRun[] }
  const order = (r: number): Target[] => r % 2 === 1 ? targets : [...targets].reverse()
  const withProxy = async <T> (t: Target, idle: boolean, run: (p: Proxy) => Promise<T>): Promise<T> => {
    const p = await startProxy(t, upstreamUrl, idle)
    try { return await run(p) } finally { await p.stop() }
  }

  for (let r = 1; r <= rounds; r++) {
    if (scenarios.includes('throughput')) {
      for (const t of order(r)) {
        const run = await withProxy(t, false, (p) => throughput(p, r))
        report.throughput.push(run)
        say(`round ${r} throughput ${t}: ${run.rps} req/s, p50 ${run.p50Ms} ms, p99 ${run.p99Ms} ms, proxy CPU ${run.proxyCpu}%, machine ${run.machineBusy}%${run.errors > 0 ? `, ${run.errors} ERRORS` : ''}`)
      }
    }
    if (scenarios.includes('streams')) {
      for (const n of streamCounts) {
        const run = await streams(null, upstreamUrl, n, r)
        report.streams.push(run)
        say(`round ${r} ${n} streams direct: served ${run.served}, lag p50 ${run.lagMs.p50} / p99 ${run.lagMs.p99} / max ${run.lagMs.max} ms`)
        for (const t of order(r)) {
          const s = await withProxy(t, false, (p) => streams(p, upstreamUrl, n, r))
          report.streams.push(s)
          say(`round ${r} ${n} streams ${t}: served ${s.served}/${n} (opened in ${s.openMs} ms), idle RSS ${s.idleRssMiB} MiB, open ${s.openRssMiB} MiB, ${s.kibPerStream} KiB/stream, lag p50 ${s.lagMs.p50} / p99 ${s.lagMs.p99} / max ${s.lagMs.max} ms, proxy CPU ${s.proxyCpu}%`)
        }
      }
    }
    if (scenarios.includes('stalls')) {
      for (const t of order(r)) {
        const s = await withProxy(t, true, (p) => stalls(p, upstreamUrl, stallStreams, r))
        report.stalls.push(s)
        say(`round ${r} ${stallStreams} stalls ${t}: ended after the event ${s.ended}, of them clean ends ${s.cleanEnds}, never cut ${s.neverCut}, early ${s.early}, error records ${s.errorRecords}; lateness min ${s.latenessMs.min} p50 ${s.latenessMs.p50} p99 ${s.latenessMs.p99} max ${s.latenessMs.max} ms`)
      }
    }
  }
  await stopChild(upstream)
  summarize(report)
  if (args.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
  const failed = report.throughput.some((t) => t.target === 'longhaul' && t.errors > 0) ||
    report.streams.some((s) => s.target === 'longhaul' && s.served !== s.streams) ||
    report.stalls.some((s) => s.target === 'longhaul' && (s.cleanEnds > 0 || s.neverCut > 0 || s.early > 0))
  return failed ? 1 : 0
}

function summarize (report: { throughput: ThroughputRun[], streams: StreamsRun[], stalls: StallsRun[] }): void {
  const med = <R extends { target: string }>(runs: R[], t: string, f: (r: R) => number): number => median(runs.filter((r) => r.target === t).map(f))
  say('\nmedians over the rounds; ratios longhaul / other')
  if (report.throughput.length > 0) {
    const tp = report.throughput
    say(`\n| throughput (wrk -c${connections}, ${duration} s, access log on) | req/s | p50 ms | p99 ms | proxy CPU |`)
    say('|---|---:|---:|---:|---:|')
    for (const t of targets) say(`| ${t} | ${med(tp, t, (r) => r.rps)} | ${med(tp, t, (r) => r.p50Ms)} | ${med(tp, t, (r) => r.p99Ms)} | ${med(tp, t, (r) => r.proxyCpu)}% |`)
    const lh = med(tp, 'longhaul', (r) => r.rps)
    say(`longhaul req/s ${ratio(lh, med(tp, 'node-floor', (r) => r.rps))} the Node floor (goal ≥ 0.9), ${ratio(lh, med(tp, 'fastify', (r) => r.rps))} @fastify/http-proxy (goal ≥ 1.3), ${ratio(lh, med(tp, 'nginx', (r) => r.rps))} nginx; p99 longhaul − floor ${round(med(tp, 'longhaul', (r) => r.p99Ms) - med(tp, 'node-floor', (r) => r.p99Ms), 2)} ms (goal ≤ 2)`)
  }
  for (const n of streamCounts) {
    const runs = report.streams.filter((s) => s.streams === n)
    if (runs.length === 0) continue
    say(`\n| ${n} streams, 1 event/s | served | idle RSS MiB | KiB/stream | lag p50 ms | lag p99 ms | lag max ms | proxy CPU |`)
    say('|---|---:|---:|---:|---:|---:|---:|---:|')
    for (const t of ['direct', ...targets]) {
      if (!runs.some((r) => r.target === t)) continue
      say(`| ${t} | ${med(runs, t, (r) => r.served)}/${n} | ${med(runs, t, (r) => r.idleRssMiB ?? Number.NaN)} | ${med(runs, t, (r) => r.kibPerStream ?? Number.NaN)} | ${med(runs, t, (r) => r.lagMs.p50)} | ${med(runs, t, (r) => r.lagMs.p99)} | ${med(runs, t, (r) => r.lagMs.max)} | ${med(runs, t, (r) => r.proxyCpu ?? Number.NaN)}% |`)
    }
    const kib = (t: string): number => med(runs, t, (r) => r.kibPerStream ?? Number.NaN)
    const idle = (t: string): number => med(runs, t, (r) => r.idleRssMiB ?? Number.NaN)
    say(`longhaul memory per stream ${ratio(kib('longhaul'), kib('node-floor'))} the Node floor (goal ≤ 0.75), ${ratio(kib('longhaul'), kib('nginx'))} nginx; idle RSS ${ratio(idle('longhaul'), idle('node-floor'))} the Node floor (goal ≤ 1), ${ratio(idle('longhaul'), idle('nginx'))} nginx; lag p99 ${med(runs, 'longhaul', (r) => r.lagMs.p99)} ms, per round ${runs.filter((r) => r.target === 'longhaul').map((r) => r.lagMs.p99).join(', ')} (goal < 10)`)
  }
  if (report.stalls.length > 0) {
    const st = report.stalls
    say(`\n| ${stallStreams} streams stalling at once, idle limit 1 s | ended after the event | clean ends | never cut | early | lateness p50 ms | p99 ms | max ms |`)
    say('|---|---:|---:|---:|---:|---:|---:|---:|')
    for (const t of targets) say(`| ${t} | ${med(st, t, (r) => r.ended)} | ${med(st, t, (r) => r.cleanEnds)} | ${med(st, t, (r) => r.neverCut)} | ${med(st, t, (r) => r.early)} | ${med(st, t, (r) => r.latenessMs.p50)} | ${med(st, t, (r) => r.latenessMs.p99)} | ${med(st, t, (r) => r.latenessMs.max)} |`)
  }
}

runBounded(45 * 60_000, main)
