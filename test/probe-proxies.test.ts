// `longhaul probe` end to end against real hops started here on loopback: nginx, HAProxy, a
// longhaul gateway, nginx in front of HAProxy, and a hop that ends a stream cleanly when it cuts
// it. Each hop has short, known limits; the probe must find each within ±5 % or ±250 ms and name
// the hop that cut.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startDemoUpstream, type DemoUpstream } from '../src/demo/upstream.ts'
import { runCli, startGateway, type RunningGateway } from './helpers/gateway.ts'
import { hostPort } from './helpers/faults.ts'
import { proxiesMissing, startHaproxy, startNginx, type RunningProxy } from './helpers/proxies.ts'
import type { FullReport } from '../src/probe/report.ts'
import type { MeasuredLimit } from '../src/probe/run.ts'
import type { LimitName } from '../src/probe/trial.ts'

const missing = proxiesMissing()

let up: DemoUpstream
before(async () => { up = await startDemoUpstream() })
after(async () => { await up.close() })

async function probe (url: string, ...args: string[]): Promise<{ code: number | null, report: FullReport, stderr: string }> {
  const r = await runCli(['probe', url, '--max', '3s', '--json', ...args])
  assert.ok(r.stdout.startsWith('{'), `no JSON report (exit ${r.code}): ${r.stderr}`)
  return { code: r.code, report: JSON.parse(r.stdout) as FullReport, stderr: r.stderr }
}

function limit (report: FullReport, name: LimitName): MeasuredLimit {
  return report.limits.find((l) => l.name === name)!
}

/** Found within the precision (±5 % or ±250 ms) and cut by that hop. */
function assertLimit (report: FullReport, name: LimitName, ms: number, hop: string | null): void {
  const m = limit(report, name)
  assert.equal(m.status, 'found', `${name}: ${JSON.stringify(m)}`)
  assert.ok(Math.abs(m.ms! - ms) <= Math.max(250, ms * 0.05), `${name}: measured ${m.ms} ms, configured ${ms} ms`)
  assert.ok(m.lowMs! >= m.ms! - m.toleranceMs!, `${name}: bracket (${m.lowMs}, ${m.ms}] wider than ±${m.toleranceMs}`)
  assert.equal(m.cut?.hop ?? null, hop, `${name}: hop (${m.cut?.by})`)
}

describe('longhaul probe against real proxies', { skip: missing ?? false, concurrency: true }, () => {
  // Started before the hops' tests run side by side: a gateway starting on a loaded machine is slow.
  let gateway: RunningGateway
  before(async () => {
    gateway = await startGateway(`listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
downstream: { bodyIdleTimeout: 1500ms }
upstreams: { app: { endpoints: [${up.url}] } }
routes:
  - name: all
    upstream: app
    timeouts: { firstByte: 2s, streamIdle: 1s, request: 2500ms }
drain: { delay: 0s, timeout: 3s }
`)
  })
  after(async () => { await gateway.stop() })

  test('nginx: proxy_read_timeout cuts the first byte and the silence, client_body_timeout the upload, keepalive_timeout the idle connection', async () => {
    const nginx = await startNginx(up.url, { location: 'proxy_read_timeout 2s;', server: 'keepalive_timeout 1s; client_body_timeout 1500ms;' })
    try {
      const { code, report, stderr } = await probe(`${nginx.url}/`)
      assert.match(stderr, /measuring 5 limits.*\n.*at most 5 at a time; the run ends within/)
      assert.equal(code, 0)
      assertLimit(report, 'firstByteTimeout', 2000, 'nginx')
      const first = limit(report, 'firstByteTimeout').cut!
      assert.equal(first.status, 504)
      assert.match(first.by, /nginx error page/)
      assert.match(first.target, /closed the target's connection .* the cut was in front of the app/)
      assertLimit(report, 'streamIdleTimeout', 2000, 'nginx')
      const silence = limit(report, 'streamIdleTimeout').cut!
      assert.equal(silence.when, 'mid-body')
      assert.equal(silence.clean, false)
      assert.equal(silence.curl, 'curl: (18) transfer closed with outstanding read data remaining')
      assert.equal(silence.seen?.end, 'cancelled')
      assertLimit(report, 'bodyIdleTimeout', 1500, 'nginx')
      // nginx buffers the request body: the upload never reached the app.
      assert.equal(limit(report, 'bodyIdleTimeout').cut!.seen, null)
      assertLimit(report, 'serverIdleTimeout', 1000, 'nginx')
      assert.equal(limit(report, 'requestTimeout').status, 'none')
      assert.equal(report.cleanCuts, 0)
    } finally {
      await nginx.stop()
    }
  })

  test('HAProxy: timeout server cuts the first byte, the silence and the upload (504 page), timeout http-keep-alive the idle connection', async () => {
    const haproxy = await startHaproxy(up.url, { timeouts: 'timeout connect 1s\ntimeout client 10s\ntimeout server 1500ms\ntimeout http-keep-alive 1s' })
    try {
      const { code, report } = await probe(`${haproxy.url}/`)
      assert.equal(code, 0)
      assertLimit(report, 'firstByteTimeout', 1500, 'haproxy')
      assert.match(limit(report, 'firstByteTimeout').cut!.by, /HAProxy error page: 504 Gateway Time-out/)
      assertLimit(report, 'streamIdleTimeout', 1500, 'haproxy')
      assertLimit(report, 'bodyIdleTimeout', 1500, 'haproxy')
      // HAProxy names itself in no header: the idle close is the hop the client connects to, unnamed.
      assertLimit(report, 'serverIdleTimeout', 1000, null)
      assert.match(limit(report, 'serverIdleTimeout').cut!.by, /the hop the client connects to .*names itself in no header/)
      assert.equal(limit(report, 'requestTimeout').status, 'none')
    } finally {
      await haproxy.stop()
    }
  })

  test('longhaul: each route limit is found and named by its outcome (x-longhaul-error, SSE error record)', async () => {
    const { code, report } = await probe(`${gateway.url}/`, '--only', 'firstByteTimeout,streamIdleTimeout,requestTimeout,bodyIdleTimeout')
    assert.equal(code, 0)
    assertLimit(report, 'firstByteTimeout', 2000, 'longhaul')
    assert.equal(limit(report, 'firstByteTimeout').cut!.by, 'x-longhaul-error: first_byte_timeout')
    assertLimit(report, 'streamIdleTimeout', 1000, 'longhaul')
    assert.match(limit(report, 'streamIdleTimeout').cut!.by, /stream_idle_timeout/)
    assertLimit(report, 'requestTimeout', 2500, 'longhaul')
    assert.match(limit(report, 'requestTimeout').cut!.by, /request_timeout/)
    assertLimit(report, 'bodyIdleTimeout', 1500, 'longhaul')
    assert.equal(limit(report, 'bodyIdleTimeout').cut!.by, 'x-longhaul-error: request_body_timeout')
  })

  describe('nginx in front of HAProxy', () => {
    let haproxy: RunningProxy
    let nginx: RunningProxy
    let dir: string
    before(async () => {
      haproxy = await startHaproxy(up.url, { timeouts: 'timeout connect 1s\ntimeout client 10s\ntimeout server 1s\ntimeout http-keep-alive 5s' })
      nginx = await startNginx(haproxy.url, { location: 'proxy_read_timeout 2s;', server: 'keepalive_timeout 1500ms;' })
      dir = await mkdtemp(join(tmpdir(), 'longhaul-probe-'))
    })
    after(async () => {
      await nginx.stop()
      await haproxy.stop()
      await rm(dir, { recursive: true, force: true })
    })

    test('the shorter limit (HAProxy behind nginx) is found and attributed; the chain file\'s stale value is flagged', async () => {
      // The chain file says HAProxy waits 30 s: the configuration in force (1 s) is not the one written down.
      const chain = join(dir, 'chain.yaml')
      await writeFile(chain, `workload: { duration: 20s, streaming: true, maxSilence: 5s }
hops:
  - { name: client, preset: curl }
  - { name: edge, preset: nginx, set: { streamIdleTimeout: 2s, serverIdleTimeout: 1500ms } }
  - { name: lb, preset: haproxy, set: { streamIdleTimeout: 30s, serverIdleTimeout: 5s } }
  - { name: app, preset: uvicorn }
`)
      const { code, report } = await probe(`${nginx.url}/`, '--only', 'firstByteTimeout,streamIdleTimeout,serverIdleTimeout', '--chain', chain)
      assert.equal(code, 1, 'a difference with the chain file exits 1')
      assertLimit(report, 'firstByteTimeout', 1000, 'haproxy')
      assertLimit(report, 'streamIdleTimeout', 1000, 'haproxy')
      assertLimit(report, 'serverIdleTimeout', 1500, 'nginx')
      const byLimit = Object.fromEntries(report.chain!.comparisons.map((c) => [c.limit, c]))
      assert.equal(byLimit.firstByteTimeout!.agree, false)
      assert.equal(byLimit.firstByteTimeout!.predicted.hop, 'edge')
      assert.equal(byLimit.firstByteTimeout!.measured.hop, 'lb')
      assert.match(byLimit.firstByteTimeout!.note, /measured 1\.\d\d s \(cut by lb\), predicted 2\.00 s \(edge: proxy_read_timeout = 2s\): the configuration in force is not the one in the chain file/)
      assert.equal(byLimit.streamIdleTimeout!.agree, false)
      assert.equal(byLimit.serverIdleTimeout!.agree, true)
      assert.equal(report.chain!.differences, 2)
    })

    test('the text report shows the same, with the difference marked', async () => {
      const r = await runCli(['probe', `${nginx.url}/`, '--max', '2s', '--only', 'firstByteTimeout'])
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, /time to first byte\s+1\.\d\d s ±0\.25 s\s+haproxy\s+before the response headers/)
      assert.match(r.stdout, /client saw: HTTP 504 Gateway Time-out from a hop/)
      assert.match(r.stdout, /hop: {8}haproxy — HAProxy error page/)
    })
  })
})

/**
 * A bad hop: when the response has been silent for idleMs it ends it with the last chunk, as if it
 * were complete (the truncation the probe must shout about).
 */
async function startCleanCutter (target: string, idleMs: number): Promise<{ url: string, close: () => Promise<void> }> {
  const { host, port } = hostPort(target)
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    const upstream = net.connect(port, host)
    sockets.add(client).add(upstream)
    let timer: NodeJS.Timeout | undefined
    let chunked = false
    client.on('data', (d) => upstream.write(d))
    upstream.on('data', (d: Buffer) => {
      chunked ||= /transfer-encoding: chunked/i.test(d.toString('latin1'))
      client.write(d)
      clearTimeout(timer)
      if (chunked) timer = setTimeout(() => { client.end('0\r\n\r\n'); upstream.destroy() }, idleMs)
    })
    const close = (): void => { clearTimeout(timer); client.destroy(); upstream.destroy() }
    upstream.on('end', close).on('error', close)
    client.on('end', close).on('error', close)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

test('a hop that ends a silent stream cleanly is a CLEAN CUT: said loudly, exit 1', async () => {
  const cutter = await startCleanCutter(up.url, 1200)
  try {
    const r = await runCli(['probe', `${cutter.url}/`, '--max', '2s', '--only', 'streamIdleTimeout'])
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stdout, /!!! CLEAN CUT: silence mid-stream — the response was truncated at 1\.\d\d s and ended as if it were complete/)
    assert.match(r.stdout, /silence mid-stream\s+1\.\d\d s ±0\.25 s\s+\S*\s+mid-body \(CLEAN: looks complete\)/)
    assert.match(r.stdout, /exit 0: curl saw a complete response/)
  } finally {
    await cutter.close()
  }
})
