// `workers: 2` end to end: two worker processes behind one primary serve requests, the admin
// listener answers for both (/metrics added up, /status summed with a row per worker, /readyz),
// SIGTERM drains both by the same rules, SIGHUP reloads both (and a bad file neither), and a
// worker killed mid-stream is replaced, its in-flight requests counted as lost.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { writeFile } from 'node:fs/promises'
import { once } from 'node:events'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { CLI, startGateway, writeConfig, type RunningGateway, type LogLine } from './helpers/gateway.ts'
import { startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { parseConfigText } from '../src/config/load.ts'
import { ConfigError } from '../src/config/diagnostics.ts'

const running: RunningGateway[] = []
const demos: DemoUpstream[] = []
after(async () => {
  await Promise.all(running.map((g) => g.stop('SIGKILL')))
  await Promise.all(demos.map((d) => d.close()))
})

async function twoWorkers (extra = ''): Promise<{ gw: RunningGateway, demo: DemoUpstream, config: (routes: string) => string }> {
  const demo = await startDemoUpstream()
  demos.push(demo)
  const config = (routes: string): string => `
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
workers: 2
upstreams: { demo: { endpoints: [${demo.url}] } }
routes:
${routes}
${extra}`
  const gw = await startGateway(config('  - name: all\n    upstream: demo\n'), { startTimeoutMs: 20_000 })
  running.push(gw)
  return { gw, demo, config }
}

/** GET on a connection of its own (each new connection goes to either worker). */
function get (url: string, headers: Record<string, string> = {}): Promise<{ status: number, body: string, error?: Error }> {
  return new Promise((resolve) => {
    http.get(url, { agent: false, headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', (error) => resolve({ status: res.statusCode ?? 0, body, error }))
      res.on('aborted', () => resolve({ status: res.statusCode ?? 0, body, error: new Error('aborted') }))
    }).on('error', (error) => resolve({ status: 0, body: '', error }))
  })
}

/** Opens a stream and resolves once its response headers are in, with the whole response to come. */
function openStream (url: string, requestId: string): Promise<{ done: Promise<{ status: number, body: string, error?: Error }> }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { 'x-request-id': requestId } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      const done = new Promise<{ status: number, body: string, error?: Error }>((settle) => {
        res.on('data', (d: string) => { body += d })
        res.on('end', () => settle({ status: res.statusCode ?? 0, body }))
        res.on('error', (error) => settle({ status: res.statusCode ?? 0, body, error }))
        res.on('aborted', () => settle({ status: res.statusCode ?? 0, body, error: new Error('aborted') }))
      })
      resolve({ done })
    })
    req.on('error', reject)
  })
}

async function json (url: string): Promise<any> {
  const res = await fetch(url)
  return await res.json()
}

async function metric (gw: RunningGateway, line: RegExp): Promise<number | undefined> {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text()
  const match = new RegExp(`^${line.source} (\\S+)$`, 'm').exec(text)
  return match === null ? undefined : Number(match[1])
}

const accessPids = (gw: RunningGateway, match: (l: LogLine) => boolean): Set<unknown> =>
  new Set(gw.lines.filter((l) => l.msg === 'access' && match(l)).map((l) => l.pid))

/** Runs `serve` on a config that must not start: resolves with its exit code and log lines. */
async function startGatewayExpectingExit (text: string): Promise<{ code: number | null, lines: LogLine[] }> {
  const { path } = await writeConfig(text)
  const child = spawn(process.execPath, [CLI, 'serve', '--config', path], { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines: LogLine[] = []
  createInterface({ input: child.stdout }).on('line', (t) => { try { lines.push(JSON.parse(t) as LogLine) } catch {} })
  const [code] = await once(child, 'exit') as [number | null]
  return { code, lines }
}

function sseBody (chunks: number): string {
  let text = ''
  for (let i = 1; i <= chunks; i++) text += `id: ${i}\nevent: tick\ndata: {"i":${i}}\n\n`
  return text
}

test('workers: auto or a whole number; anything else is an error at the key', () => {
  const base = 'upstreams: { a: { endpoints: [http://127.0.0.1:1] } }\nroutes: [{ name: r, upstream: a }]\n'
  assert.equal(parseConfigText(base, 'f').config.workers, 1)
  assert.equal(parseConfigText(`${base}workers: auto\n`, 'f').config.workers, 'auto')
  assert.equal(parseConfigText(`${base}workers: 4\n`, 'f').config.workers, 4)
  for (const bad of ['0', 'many', '1.5']) {
    assert.throws(() => parseConfigText(`${base}workers: ${bad}\n`, 'f'), (err: unknown) =>
      err instanceof ConfigError && /^f:3:1 workers: workers: auto, or a whole number/.test(err.message))
  }
})

test('two workers serve requests; /metrics adds their counters up; /status sums them with a row per worker', async () => {
  const { gw } = await twoWorkers()
  assert.deepEqual(await json(`${gw.adminUrl}/readyz`), { state: 'serving' })
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => get(`${gw.url}/health`, { 'x-request-id': `w-${i}` })))
  assert.deepEqual(results.map((r) => r.status), Array(20).fill(200))
  for (let i = 0; i < 20; i++) await gw.accessLine(`w-${i}`)
  const status = await json(`${gw.adminUrl}/status`)
  assert.equal(status.workers.length, 2)
  const pids = new Set(status.workers.map((w: { pid: number }) => w.pid))
  // The kernel spreads new connections over the workers' sockets: both served some of the 20
  // (all 20 on one worker: 2 chances in a million).
  assert.deepEqual(accessPids(gw, (l) => String(l.requestId).startsWith('w-')), pids)
  assert.equal(await metric(gw, /longhaul_requests_total\{route="all",upstream="demo",outcome="ok",status="200"\}/), 20)
  assert.equal(await metric(gw, /longhaul_workers/), 2)
  assert.equal((await json(`${gw.adminUrl}/config`)).workers, 2)
  assert.equal(await metric(gw, /longhaul_config_reloads_total\{result="ok"\}/), 0)
  assert.equal(status.state, 'serving')
  assert.equal(status.inflight, 0)
  assert.equal(status.upstreams.demo.endpoints.length, 1)
  // Headroom from both workers' sketches merged: every one of the 20 requests counted.
  assert.equal(Math.max(...status.headroom.map((r: { count: number }) => r.count)), 20, JSON.stringify(status.headroom))
})

test('SIGTERM drains both workers together: readiness first, 200 streams finish whole, exit 0', async () => {
  const { gw } = await twoWorkers('drain: { delay: 300ms, timeout: 20s }\n')
  const n = 200
  const streams = await Promise.all(Array.from({ length: n }, (_, i) => openStream(`${gw.url}/sse?chunks=8&interval-ms=250`, `d-${i}`)))
  gw.process.kill('SIGTERM')
  // The primary turns unready before it tells the workers to drain.
  await gw.waitForLine((l) => l.msg === 'drain started')
  const ready = await fetch(`${gw.adminUrl}/readyz`)
  assert.equal(ready.status, 503)
  await ready.arrayBuffer()
  const results = await Promise.all(streams.map((s) => s.done))
  const whole = results.filter((r) => r.status === 200 && r.error === undefined && r.body === sseBody(8)).length
  assert.equal(whole, n, 'zero lost')
  assert.equal(await gw.exited, 0)
  assert.equal(accessPids(gw, (l) => String(l.requestId).startsWith('d-') && l.outcome === 'ok').size, 2, 'both workers carried streams')
  assert.equal(gw.lines.filter((l) => l.msg === 'drain finished' && l.cut === 0).length, 2)
})

test('SIGHUP reloads both workers; an invalid file leaves both on the old config', async () => {
  const { gw, config } = await twoWorkers()
  assert.equal((await get(`${gw.url}/new/health`)).status, 404)
  await writeFile(gw.configPath, config('  - name: new\n    match: { pathPrefix: /new/ }\n    upstream: demo\n    rewrite: { stripPrefix: /new }\n  - name: all\n    upstream: demo\n'))
  gw.process.kill('SIGHUP')
  await gw.waitForLine((l) => l.msg === 'config reloaded')
  const after = await Promise.all(Array.from({ length: 20 }, (_, i) => get(`${gw.url}/new/health`, { 'x-request-id': `r-${i}` })))
  assert.deepEqual(after.map((r) => r.status), Array(20).fill(200))
  for (let i = 0; i < 20; i++) await gw.accessLine(`r-${i}`)
  assert.equal(accessPids(gw, (l) => String(l.requestId).startsWith('r-') && l.route === 'new').size, 2)
  assert.equal((await json(`${gw.adminUrl}/config`)).routes[0].name, 'new')

  await writeFile(gw.configPath, config('  - name: broken\n    upstream: nowhere\n'))
  gw.process.kill('SIGHUP')
  await gw.waitForLine((l) => l.msg === 'config reload failed; the running config is unchanged')
  const status = await json(`${gw.adminUrl}/status`)
  assert.equal(status.lastReload.ok, false)
  assert.match(status.lastReload.errors[0], /:8:\d+ routes\[0\]\.upstream: /)
  assert.equal(await metric(gw, /longhaul_config_reloads_total\{result="error"\}/), 1)
  assert.equal(await metric(gw, /longhaul_config_reloads_total\{result="ok"\}/), 1)
  const still = await Promise.all(Array.from({ length: 6 }, () => get(`${gw.url}/new/health`)))
  assert.deepEqual(still.map((r) => r.status), Array(6).fill(200))

  // A new worker count takes a restart: reported, not applied.
  await writeFile(gw.configPath, config('  - name: all\n    upstream: demo\n').replace('workers: 2', 'workers: 3'))
  gw.process.kill('SIGHUP')
  await gw.waitForLine((l) => l.msg === 'config reload: these changes need a restart and are not in effect')
  const restart = await json(`${gw.adminUrl}/status`)
  assert.equal(restart.lastReload.ok, true)
  assert.ok(restart.lastReload.restartRequired.includes('workers'), JSON.stringify(restart.lastReload))
  assert.equal(restart.workers.length, 2)
  assert.equal((await json(`${gw.adminUrl}/config`)).workers, 2)
})

test('a killed worker is replaced and logged; its in-flight requests count as lost, the other worker\'s finish', async () => {
  const { gw } = await twoWorkers()
  const streams = await Promise.all(Array.from({ length: 4 }, (_, i) => openStream(`${gw.url}/sse?chunks=10&interval-ms=200`, `k-${i}`)))
  // /status asks each worker: the primary then knows each one's in-flight count.
  const status = await json(`${gw.adminUrl}/status`)
  const victim = status.workers.find((w: { inflight: number }) => w.inflight > 0)
  assert.ok(victim !== undefined, JSON.stringify(status))
  process.kill(victim.pid, 'SIGKILL')
  const exited = await gw.waitForLine((l) => l.msg === 'worker exited; starting a new one')
  assert.equal(exited.workerPid, victim.pid)
  assert.equal(exited.lostRequests, victim.inflight)
  assert.equal(exited.signal, 'SIGKILL')
  const results = await Promise.all(streams.map((s) => s.done))
  assert.equal(results.filter((r) => r.error !== undefined).length, victim.inflight, 'the victim\'s streams were cut')
  assert.equal(results.filter((r) => r.error === undefined && r.body === sseBody(10)).length, 4 - victim.inflight, 'the other worker\'s streams finished')
  await gw.waitForLine((l) => l.msg === 'worker started', 10_000)
  assert.equal(await metric(gw, /longhaul_worker_lost_requests_total/), victim.inflight)
  assert.equal(await metric(gw, /longhaul_worker_restarts_total/), 1)
  assert.equal((await fetch(`${gw.adminUrl}/readyz`)).status, 200)
  const pids = (await json(`${gw.adminUrl}/status`)).workers.map((w: { pid: number }) => w.pid)
  assert.equal(pids.length, 2)
  assert.ok(!pids.includes(victim.pid))
})

test('a worker that cannot start (its listener address is taken) fails the start: exit 1, no worker left', async () => {
  const blocker = http.createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  after(() => { blocker.close() })
  const port = (blocker.address() as { port: number }).port
  const gw = await startGatewayExpectingExit(`
listen: [{ address: 127.0.0.1:${port} }]
admin: { address: 127.0.0.1:0 }
workers: 2
upstreams: { demo: { endpoints: [http://127.0.0.1:1] } }
routes: [{ name: all, upstream: demo }]
`)
  assert.equal(gw.code, 1)
  assert.ok(gw.lines.some((l) => l.msg === 'start failed' && JSON.stringify(l.err).includes('EADDRINUSE')), JSON.stringify(gw.lines))
})

test('SIGTERM while a dead worker is being replaced: the new worker drains too, the primary exits 0', async () => {
  const { gw } = await twoWorkers()
  const status = await json(`${gw.adminUrl}/status`)
  process.kill(status.workers[0].pid, 'SIGKILL')
  await gw.waitForLine((l) => l.msg === 'worker exited; starting a new one')
  // The replacement is forked now and still starting: the drain message reaches it mid-start.
  gw.process.kill('SIGTERM')
  const code = await Promise.race([gw.exited, new Promise((resolve) => setTimeout(() => resolve('still running after 15 s'), 15_000).unref())])
  assert.equal(code, 0, JSON.stringify(gw.lines.slice(-6)))
})
