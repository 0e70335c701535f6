// The keep-alive race (SCENARIOS.md story 2): a pooled upstream connection reused just as the
// backend closes it. Two backends close idle connections early — one at 400 ms announcing
// `Keep-Alive: timeout=0` (what Node sends for a sub-second keep-alive), one at 1.5 s with no hint
// at all (like gunicorn) — and 4 sequential clients per backend send requests with gaps that
// straddle that limit, through longhaul and through nginx with `keepalive` pooling, at once.
// The backends check idleness coarsely, so a request can land on a connection they are closing.
// Counts the errors each proxy let through to its clients.
//
//   node bench/keepalive-race.ts [--seconds 60] [--json]
//
// Needs nginx on the PATH or in /usr/sbin (Debian: apt-get install nginx-light). Loopback only;
// every loop stops after --seconds; every child process is ended by its PID.
import net from 'node:net'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, writeFile, rm } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from 'undici'
import { startGateway } from '../test/helpers/gateway.ts'

const args = process.argv.slice(2)
const seconds = Number(args[args.indexOf('--seconds') + 1] ?? 60) || 60
const asJson = args.includes('--json')
const CLIENTS = 4

interface Backend { port: number, close: () => void, requests: number, closedIdle: number, dropped: number }

/**
 * A raw HTTP/1.1 backend whose idle close is checked coarsely, as real servers do (Node checks on
 * an interval, gunicorn in its select loop): every `tickMs` it closes connections idle longer
 * than `idleMs`, and a request that arrives on a connection already past that limit is dropped
 * unanswered — the server had decided to close it. That is the race a pooling proxy loses.
 */
async function startBackend (idleMs: number, tickMs: number, hint: string | null): Promise<Backend> {
  const backend: Backend = { port: 0, close: () => {}, requests: 0, closedIdle: 0, dropped: 0 }
  const lastActive = new Map<net.Socket, number>()
  const server = net.createServer((socket) => {
    let buffered = ''
    lastActive.set(socket, performance.now())
    socket.on('data', (data) => {
      if (performance.now() - lastActive.get(socket)! > idleMs) {
        backend.dropped++
        socket.destroy()
        return
      }
      buffered += data.toString('latin1')
      let end: number
      while ((end = buffered.indexOf('\r\n\r\n')) !== -1) {
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0)
        if (buffered.length < end + 4 + length) break // the body is still arriving
        buffered = buffered.slice(end + 4 + length)
        backend.requests++
        socket.write(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n${hint === null ? '' : `keep-alive: ${hint}\r\n`}\r\nok`)
      }
      lastActive.set(socket, performance.now())
    })
    socket.on('error', () => {})
    socket.on('close', () => lastActive.delete(socket))
  })
  const ticker = setInterval(() => {
    const now = performance.now()
    for (const [socket, at] of lastActive) {
      if (now - at > idleMs) { backend.closedIdle++; socket.destroy() }
    }
  }, tickMs)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  backend.port = (server.address() as net.AddressInfo).port
  backend.close = () => { clearInterval(ticker); server.close() }
  return backend
}

async function startNginx (upstreams: Array<{ name: string, port: number }>): Promise<{ url: string, child: ChildProcess, dir: string }> {
  const binary = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p)) ?? 'nginx'
  const dir = await mkdtemp(join(tmpdir(), 'longhaul-bench-nginx-'))
  const port = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (probe.address() as net.AddressInfo).port
      probe.close(() => resolve(p))
    })
  })
  // keepalive pooling as the nginx docs recommend for upstreams (its idle default is 60 s).
  const blocks = upstreams.map((u) => `upstream ${u.name} { server 127.0.0.1:${u.port}; keepalive 16; }`).join('\n  ')
  const locations = upstreams.map((u) => `location /${u.name} { proxy_pass http://${u.name}; proxy_http_version 1.1; proxy_set_header Connection ""; }`).join('\n    ')
  await writeFile(join(dir, 'nginx.conf'), `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  ${blocks}
  server {
    listen 127.0.0.1:${port};
    ${locations}
  }
}
`)
  const child = spawn(binary, ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: ['ignore', 'ignore', 'inherit'] })
  // Ready when it accepts connections.
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true) })
      s.on('error', () => resolve(false))
    })
    if (ok) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { url: `http://127.0.0.1:${port}`, child, dir }
}

interface Tally { requests: number, errors: number, kinds: Record<string, number> }

/** One client: a request, a gap drawn from [lo, hi], again, until the time is up. */
async function client (origin: string, path: string, method: 'GET' | 'POST', lo: number, hi: number, until: number, tally: Tally): Promise<void> {
  const c = new Client(origin)
  while (performance.now() < until) {
    tally.requests++
    try {
      const res = await c.request(method === 'GET' ? { path, method } : { path, method, body: '{"prompt":"hello"}', headers: { 'content-type': 'application/json' } })
      const body = await res.body.text()
      if (res.statusCode !== 200 || body !== 'ok') {
        tally.errors++
        const kind = `status ${res.statusCode}`
        tally.kinds[kind] = (tally.kinds[kind] ?? 0) + 1
      }
    } catch (err) {
      tally.errors++
      const kind = (err as { code?: string }).code ?? (err as Error).message
      tally.kinds[kind] = (tally.kinds[kind] ?? 0) + 1
    }
    await new Promise((resolve) => setTimeout(resolve, lo + Math.random() * (hi - lo)))
  }
  await c.close()
}

const scenarios = [
  { name: 'GET, closes at 400 ms, Keep-Alive: timeout=0', path: '/a', method: 'GET', idleMs: 400, tickMs: 250, hint: 'timeout=0', gaps: [250, 550] as const },
  { name: 'GET, closes at 1.5 s, no hint (gunicorn-like)', path: '/b', method: 'GET', idleMs: 1500, tickMs: 1000, hint: null, gaps: [1300, 1700] as const },
  // POST is not idempotent: no proxy may resend it once it may have reached the backend.
  { name: 'POST, closes at 400 ms, Keep-Alive: timeout=0', path: '/c', method: 'POST', idleMs: 400, tickMs: 250, hint: 'timeout=0', gaps: [250, 550] as const },
  { name: 'POST, closes at 1.5 s, no hint (gunicorn-like)', path: '/d', method: 'POST', idleMs: 1500, tickMs: 1000, hint: null, gaps: [1300, 1700] as const }
]

// One backend per client: each pool then sees one sequential client, so a pooled connection's
// idle time is exactly that client's gap.
interface Lane { proxy: 'longhaul' | 'nginx', scenario: number, name: string, backend: Backend, tally: Tally }
const lanes: Lane[] = []
for (const proxy of ['longhaul', 'nginx'] as const) {
  for (const [i, s] of scenarios.entries()) {
    for (let c = 0; c < CLIENTS; c++) {
      lanes.push({ proxy, scenario: i, name: `${s.path.slice(1)}${c}`, backend: await startBackend(s.idleMs, s.tickMs, s.hint), tally: { requests: 0, errors: 0, kinds: {} } })
    }
  }
}
const ours = lanes.filter((l) => l.proxy === 'longhaul')
const gateway = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
log: { level: info }
upstreams:
${ours.map((l) => `  ${l.name}: { endpoints: [http://127.0.0.1:${l.backend.port}] }`).join('\n')}
routes:
${ours.map((l) => `  - { name: ${l.name}, match: { pathPrefix: /${l.name} }, upstream: ${l.name} }`).join('\n')}
`)
const nginx = await startNginx(lanes.filter((l) => l.proxy === 'nginx').map((l) => ({ name: l.name, port: l.backend.port })))

const until = performance.now() + seconds * 1000
const runs = lanes.map((l) => {
  const s = scenarios[l.scenario]!
  return client(l.proxy === 'longhaul' ? gateway.url : nginx.url, `/${l.name}`, s.method as 'GET' | 'POST', s.gaps[0], s.gaps[1], until, l.tally)
})
try {
  await Promise.all(runs)
} finally {
  const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text()
  const staleRetries = [...metrics.matchAll(/longhaul_retries_total\{route="[^"]+",reason="stale_connection"\} (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0)
  await gateway.stop()
  nginx.child.kill('SIGTERM')
  for (const l of lanes) l.backend.close()
  await rm(nginx.dir, { recursive: true, force: true })

  const rows = (['longhaul', 'nginx'] as const).flatMap((proxy) => scenarios.map((s, i) => {
    const mine = lanes.filter((l) => l.proxy === proxy && l.scenario === i)
    const kinds: Record<string, number> = {}
    for (const l of mine) for (const [k, n] of Object.entries(l.tally.kinds)) kinds[k] = (kinds[k] ?? 0) + n
    const sum = (f: (l: Lane) => number): number => mine.reduce((n, l) => n + f(l), 0)
    return { proxy, scenario: s.name, requests: sum((l) => l.tally.requests), errors: sum((l) => l.tally.errors), kinds, backendDropped: sum((l) => l.backend.dropped), backendClosedIdle: sum((l) => l.backend.closedIdle) }
  }))
  if (asJson) process.stdout.write(`${JSON.stringify({ seconds, clients: CLIENTS, rows, longhaulStaleRetries: staleRetries })}\n`)
  else {
    process.stdout.write(`keep-alive race, ${seconds} s, ${CLIENTS} sequential clients per backend and proxy\n`)
    for (const r of rows) {
      process.stdout.write(`${r.proxy.padEnd(9)} ${r.scenario.padEnd(48)} requests ${String(r.requests).padStart(5)}  errors ${String(r.errors).padStart(4)}  ${JSON.stringify(r.kinds)}  (backends closed ${r.backendClosedIdle} idle connections and dropped ${r.backendDropped} requests on connections they were closing)\n`)
    }
    process.stdout.write(`longhaul stale-connection retries: ${staleRetries}\n`)
  }
}
