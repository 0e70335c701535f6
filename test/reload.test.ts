// Hot reload end to end (DESIGN.md §9, §11): SIGHUP and `serve --watch` on a real gateway process.
// New requests use the new config, requests in flight keep theirs, nothing is lost on the way,
// an invalid file changes nothing and is reported, a change that needs a restart is named, and
// --watch follows a Kubernetes ConfigMap's `..data` symlink swap.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, mkdir, writeFile, symlink, rename, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Pool, request } from 'undici'
import { startGateway, startGatewayWithFile, type RunningGateway } from './helpers/gateway.ts'
import { closedPort, startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { sseRecords, errorRecordData } from './helpers/faults.ts'

const running: RunningGateway[] = []
const demos: DemoUpstream[] = []
const dirs: string[] = []
after(async () => {
  await Promise.all(running.map((g) => g.stop('SIGTERM')))
  await Promise.all(demos.map((d) => d.close()))
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
})

async function demo (): Promise<DemoUpstream> {
  const d = await startDemoUpstream()
  demos.push(d)
  return d
}

async function gateway (text: string, args: string[] = []): Promise<RunningGateway> {
  const gw = await startGateway(text, { args })
  running.push(gw)
  return gw
}

function sseBody (chunks: number): string {
  let text = ''
  for (let i = 1; i <= chunks; i++) text += `id: ${i}\nevent: tick\ndata: {"i":${i}}\n\n`
  return text
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Resolves with the n-th line with this msg (1-based), already logged or still to come. */
function nthLine (gw: RunningGateway, msg: string, n: number, timeoutMs = 5000): Promise<Record<string, unknown>> {
  let seen = 0
  const counted = new WeakSet<object>()
  return gw.waitForLine((l) => {
    if (l.msg !== msg || counted.has(l)) return false
    counted.add(l)
    return ++seen === n
  }, timeoutMs)
}

/** Rewrites the config file in place and sends SIGHUP; resolves with the n-th `config reloaded`. */
async function reloadWith (gw: RunningGateway, text: string, n: number): Promise<Record<string, unknown>> {
  await writeFile(gw.configPath, text)
  gw.process.kill('SIGHUP')
  return await nthLine(gw, 'config reloaded', n)
}

async function getJson (url: string): Promise<Record<string, any>> {
  const res = await request(url)
  assert.equal(res.statusCode, 200, url)
  return await res.body.json() as Record<string, any>
}

test('a reload under steady load loses no request, and requests after it reach the new upstream', async () => {
  const a = await demo()
  const b = await demo()
  const config = (endpoint: string, timeouts: string): string => `
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams: { main: { endpoints: [${endpoint}] } }
routes:
  - name: api
    upstream: main
    timeouts: ${timeouts}
drain: { delay: 0s, timeout: 2s }
`
  const gw = await gateway(config(a.url, '{ request: 1m }'))
  let connectionsToB = 0
  b.server.on('connection', () => { connectionsToB++ })
  const pool = new Pool(gw.url, { connections: 8 })
  const sent: Array<{ id: string, at: number }> = []
  const failures: string[] = []
  let stop = false
  let n = 0
  // Four workers, each sending requests back to back on kept-alive connections: short JSON
  // answers and short streams, so that reloads land while both are in flight.
  const worker = async (w: number): Promise<void> => {
    while (!stop) {
      const id = `load-${w}-${n++}`
      const stream = n % 3 === 0
      sent.push({ id, at: performance.now() })
      try {
        const res = await pool.request({ path: stream ? '/sse?chunks=4&interval-ms=25' : `/headers?w=${w}`, method: 'GET', headers: { 'x-request-id': id } })
        const body = await res.body.text()
        if (res.statusCode !== 200) failures.push(`${id}: ${res.statusCode} ${body.slice(0, 300)}`)
        else if (stream && body !== sseBody(4)) failures.push(`${id}: stream body ${JSON.stringify(body.slice(-100))}`)
        else if (!stream && (JSON.parse(body) as { headers: Record<string, string> }).headers['x-request-id'] !== id) failures.push(`${id}: wrong answer`)
      } catch (err) {
        failures.push(`${id}: ${(err as Error).message}`)
      }
    }
  }
  const workers = [0, 1, 2, 3].map(worker)
  try {
    await sleep(1000)
    // First reload: the upstream's endpoint moves from A to B (the old pool is retired while
    // requests are still on it).
    await reloadWith(gw, config(b.url, '{ request: 1m }'), 1)
    const firstReloadSeenAt = performance.now()
    await sleep(1000)
    // Second reload: only the route's timeouts change, so upstream `main` keeps its pool and
    // its open connections (no reconnect storm).
    const connectionsBefore = connectionsToB
    const second = await reloadWith(gw, config(b.url, '{ request: 2m, streamIdle: 30s }'), 2)
    await sleep(1000)
    const connectionsAfterSecondReload = connectionsToB - connectionsBefore
    stop = true
    await Promise.all(workers)

    assert.deepEqual(failures, [])
    assert.ok(sent.length > 100, `only ${sent.length} requests in 3 s`)
    assert.equal(gw.lines.filter((l) => l.msg === 'config reload failed; the running config is unchanged').length, 0)
    assert.equal(typeof second.configHash, 'string')
    // Every request sent after the first reload was seen went to B; some before went to A.
    const endpoints = await Promise.all(sent.map(async ({ id, at }) => ({ at, endpoint: (await gw.accessLine(id)).endpoint })))
    const late = endpoints.filter((e) => e.at > firstReloadSeenAt)
    assert.ok(late.length > 50)
    assert.deepEqual(late.filter((e) => e.endpoint !== b.url), [])
    assert.ok(endpoints.some((e) => e.endpoint === a.url))
    assert.ok(connectionsBefore > 0)
    assert.equal(connectionsAfterSecondReload, 0, 'the unchanged upstream kept its pooled connections')
    const access = gw.lines.filter((l) => l.msg === 'access')
    assert.deepEqual(access.filter((l) => l.outcome !== 'ok' || l.status !== 200), [])

    const effective = await getJson(`${gw.adminUrl}/config`)
    assert.deepEqual(effective.routes[0].timeouts.request, { ms: 120_000, source: 'route' })
    assert.deepEqual(effective.routes[0].timeouts.streamIdle, { ms: 30_000, source: 'route' })
    const status = await getJson(`${gw.adminUrl}/status`)
    assert.equal(status.lastReload.ok, true)
    assert.deepEqual(status.lastReload.restartRequired, [])
    assert.equal(status.config.hash, second.configHash)
    assert.deepEqual(status.upstreams.main.endpoints.map((e: { url: string }) => e.url), [b.url])
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text()
    assert.match(metrics, /^longhaul_config_reloads_total\{result="ok"\} 2$/m)
    assert.match(metrics, /^longhaul_config_reloads_total\{result="error"\} 0$/m)
    assert.match(metrics, new RegExp(`^longhaul_upstream_endpoint_up\\{upstream="main",endpoint="${b.url}"\\} 1$`, 'm'))
    assert.doesNotMatch(metrics, new RegExp(`endpoint="${a.url}"`))
  } finally {
    stop = true
    await Promise.all(workers)
    await pool.destroy()
  }
})

test('a stream started before a reload keeps its route\'s old timeouts; new requests get the new ones', async () => {
  const d = await demo()
  const config = (streamIdle: string): string => `
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams: { demo: { endpoints: [${d.url}] } }
routes:
  - name: stream
    upstream: demo
    timeouts: { streamIdle: ${streamIdle} }
drain: { delay: 0s, timeout: 2s }
`
  const gw = await gateway(config('2s'))
  // 6 events 500 ms apart: fine under streamIdle 2s, cut under 200ms.
  const old = await request(`${gw.url}/sse?chunks=6&interval-ms=500`, { headers: { 'x-request-id': 'before-reload' } })
  assert.equal(old.statusCode, 200)
  const oldBody = old.body.text()
  await reloadWith(gw, config('200ms'), 1)
  const effective = await getJson(`${gw.adminUrl}/config`)
  assert.equal(effective.routes[0].timeouts.streamIdle.ms, 200)

  const fresh = await request(`${gw.url}/sse?chunks=6&interval-ms=500`, { headers: { 'x-request-id': 'after-reload' } })
  assert.equal(fresh.statusCode, 200)
  // Read what arrived before the cut (text() would reject and drop it).
  let received = ''
  try {
    for await (const chunk of fresh.body) received += String(chunk)
  } catch { /* the cut */ }
  const records = sseRecords(received)
  const freshLine = await gw.accessLine('after-reload')
  assert.equal(freshLine.outcome, 'stream_idle_timeout')
  assert.equal(freshLine.limitMs, 200)
  assert.equal(records.at(-1)?.event, 'error')
  assert.equal(errorRecordData(records.at(-1)!).code, 'stream_idle_timeout')

  assert.equal(await oldBody, sseBody(6))
  const oldLine = await gw.accessLine('before-reload')
  assert.equal(oldLine.outcome, 'ok')
  assert.ok((oldLine.durationMs as number) >= 2900)
})

test('an invalid reload keeps the running config and is reported in the log, /status and /metrics', async () => {
  const d = await demo()
  const config = (routeExtra: string): string => [
    'listen: [{ address: 127.0.0.1:0 }]',
    'admin: { address: 127.0.0.1:0 }',
    `upstreams: { demo: { endpoints: [${d.url}] } }`,
    'routes:',
    '  - name: all',
    '    upstream: demo',
    routeExtra,
    'drain: { delay: 0s, timeout: 2s }',
    ''
  ].join('\n')
  const gw = await gateway(config('    timeouts: { request: 1m }'))
  const before = await getJson(`${gw.adminUrl}/status`)
  assert.equal(before.lastReload, null)

  // Line 7, column 5: an unknown key (a typo of `timeouts`).
  await writeFile(gw.configPath, config('    timeout: { request: 5s }'))
  gw.process.kill('SIGHUP')
  const failed = await gw.waitForLine((l) => l.msg === 'config reload failed; the running config is unchanged')
  const expected = `${gw.configPath}:7:5 routes[0].timeout: `
  const errors = failed.errors as string[]
  assert.ok(errors.length >= 1 && errors[0]!.startsWith(expected), JSON.stringify(errors))
  assert.match(errors[0]!, /did you mean 'timeouts'/)

  const status = await getJson(`${gw.adminUrl}/status`)
  assert.equal(status.lastReload.ok, false)
  assert.deepEqual(status.lastReload.errors, errors)
  assert.deepEqual(status.lastReload.restartRequired, [])
  assert.ok(!Number.isNaN(Date.parse(status.lastReload.at)))
  assert.equal(status.config.hash, before.config.hash, 'the running config is still the old one')
  assert.equal(status.state, 'serving')
  const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text()
  assert.match(metrics, /^longhaul_config_reloads_total\{result="error"\} 1$/m)
  assert.match(metrics, /^longhaul_config_reloads_total\{result="ok"\} 0$/m)

  // Requests are still served, with the old route's timeouts.
  const res = await request(`${gw.url}/headers`)
  assert.equal(res.statusCode, 200)
  await res.body.dump()
  const effective = await getJson(`${gw.adminUrl}/config`)
  assert.deepEqual(effective.routes[0].timeouts.request, { ms: 60_000, source: 'route' })
  assert.equal(gw.lines.some((l) => l.msg === 'config reloaded'), false)
})

test('changed listen and socket settings are reported as needing a restart, and stay reported; the rest of the reload applies', async () => {
  const d = await demo()
  const config = (listen: string, headersTimeout: string, request: string): string => `
listen: [{ address: ${listen} }]
admin: { address: 127.0.0.1:0 }
downstream: { headersTimeout: ${headersTimeout}, sendTimeout: 45s }
upstreams: { demo: { endpoints: [${d.url}] } }
routes:
  - name: all
    upstream: demo
    timeouts: { request: ${request} }
drain: { delay: 0s, timeout: 2s }
`
  const gw = await gateway(config('127.0.0.1:0', '30s', '1m'))
  const port = await closedPort()
  // The listener, a socket setting (needs a restart) and a route timeout (applies at once).
  await reloadWith(gw, config(`127.0.0.1:${port}`, '20s', '3m'), 1)
  const warned = await gw.waitForLine((l) => /need a restart/.test(l.msg))
  assert.deepEqual(warned.restartRequired, ['listen', 'downstream.headersTimeout'])
  const status = await getJson(`${gw.adminUrl}/status`)
  assert.equal(status.lastReload.ok, true)
  assert.deepEqual(status.lastReload.restartRequired, ['listen', 'downstream.headersTimeout'])
  const effective = await getJson(`${gw.adminUrl}/config`)
  assert.deepEqual(effective.routes[0].timeouts.request, { ms: 180_000, source: 'route' })
  // Still listening where it started, and /config (the config in effect) says so.
  const res = await request(`${gw.url}/headers`)
  assert.equal(res.statusCode, 200)
  await res.body.dump()
  assert.deepEqual(effective.listen, ['127.0.0.1:0'])
  assert.equal(effective.downstream.headersTimeoutMs, 30_000)
  assert.equal(effective.downstream.sendTimeoutMs, 45_000)

  // A later reload that changes something else still reports them: they are still not in effect.
  await reloadWith(gw, config(`127.0.0.1:${port}`, '20s', '4m'), 2)
  const later = await getJson(`${gw.adminUrl}/status`)
  assert.deepEqual(later.lastReload.restartRequired, ['listen', 'downstream.headersTimeout'])
  assert.deepEqual((await getJson(`${gw.adminUrl}/config`)).routes[0].timeouts.request, { ms: 240_000, source: 'route' })
})

test('a changed downstream.maxHeaderCount, maxConcurrentStreams or resetFlood is reported as needing a restart and keeps its running value', async () => {
  const d = await demo()
  const config = (maxHeaderCount: number, rate: number, streams: number): string => `
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
downstream: { maxHeaderCount: ${maxHeaderCount}, maxConcurrentStreams: ${streams}, resetFlood: { rate: ${rate} } }
upstreams: { demo: { endpoints: [${d.url}] } }
routes: [{ name: all, upstream: demo }]
drain: { delay: 0s, timeout: 2s }
`
  const gw = await gateway(config(20, 200, 1000))
  await reloadWith(gw, config(200, 100, 10), 1)
  const status = await getJson(`${gw.adminUrl}/status`)
  assert.deepEqual(status.lastReload.restartRequired, ['downstream.maxHeaderCount', 'downstream.maxConcurrentStreams', 'downstream.resetFlood'])
  const effective = await getJson(`${gw.adminUrl}/config`)
  assert.equal(effective.downstream.maxHeaderCount, 20)
  assert.equal(effective.downstream.maxConcurrentStreams, 1000)
  assert.equal(effective.downstream.resetFlood.rate, 200)
  // The listener still counts against 20: 50 fields are refused, as before the reload.
  const headers: Record<string, string> = {}
  for (let i = 0; i < 50; i++) headers[`x-field-${i}`] = 'v'
  const res = await request(`${gw.url}/headers`, { headers })
  assert.equal(res.statusCode, 431)
  await res.body.dump()
})

test('--watch reloads through a Kubernetes ConfigMap ..data symlink swap', async () => {
  const d = await demo()
  const config = (streamIdle: string): string => `
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams: { demo: { endpoints: [${d.url}] } }
routes:
  - name: all
    upstream: demo
    timeouts: { streamIdle: ${streamIdle} }
drain: { delay: 0s, timeout: 2s }
`
  // The layout the kubelet writes: a timestamped directory, `..data` pointing at it, and the
  // visible file a symlink through `..data`.
  const dir = await mkdtemp(join(tmpdir(), 'longhaul-configmap-'))
  dirs.push(dir)
  await mkdir(join(dir, '..2026_01'))
  await writeFile(join(dir, '..2026_01', 'longhaul.yaml'), config('45s'))
  await symlink('..2026_01', join(dir, '..data'))
  await symlink('..data/longhaul.yaml', join(dir, 'longhaul.yaml'))
  const gw = await startGatewayWithFile(join(dir, 'longhaul.yaml'), { args: ['--watch'] })
  running.push(gw)
  assert.equal((await getJson(`${gw.adminUrl}/config`)).routes[0].timeouts.streamIdle.ms, 45_000)

  // An update: a new timestamped directory, a `..data_tmp` symlink renamed over `..data` (one
  // atomic step), then the old directory removed.
  await mkdir(join(dir, '..2026_02'))
  await writeFile(join(dir, '..2026_02', 'longhaul.yaml'), config('30s'))
  await symlink('..2026_02', join(dir, '..data_tmp'))
  await rename(join(dir, '..data_tmp'), join(dir, '..data'))
  await rm(join(dir, '..2026_01'), { recursive: true })

  const reloaded = await nthLine(gw, 'config reloaded', 1)
  assert.equal(reloaded.config, join(dir, 'longhaul.yaml'))
  const effective = await getJson(`${gw.adminUrl}/config`)
  assert.deepEqual(effective.routes[0].timeouts.streamIdle, { ms: 30_000, source: 'route' })
  const status = await getJson(`${gw.adminUrl}/status`)
  assert.equal(status.lastReload.ok, true)
  assert.equal(status.config.hash, reloaded.configHash)
  // One swap, one reload (the watcher settles the burst of events and compares content). The
  // next swap is the barrier: its reload comes after any the first burst could still cause, so
  // it must be the second one, with the second content.
  await mkdir(join(dir, '..2026_03'))
  await writeFile(join(dir, '..2026_03', 'longhaul.yaml'), config('20s'))
  await symlink('..2026_03', join(dir, '..data_tmp'))
  await rename(join(dir, '..data_tmp'), join(dir, '..data'))
  await rm(join(dir, '..2026_02'), { recursive: true })
  const next = await nthLine(gw, 'config reloaded', 2)
  assert.notEqual(next.configHash, reloaded.configHash)
  assert.deepEqual((await getJson(`${gw.adminUrl}/config`)).routes[0].timeouts.streamIdle, { ms: 20_000, source: 'route' })
  assert.equal(gw.lines.filter((l) => l.msg === 'config reloaded').length, 2)
  assert.equal(gw.lines.some((l) => l.msg === 'config reload failed; the running config is unchanged'), false)
})
