// Dead peers (SCENARIOS.md story 3): both sides of a long stream carry TCP keep-alive probes
// with the configured idle time, read back from the kernel with `ss -o`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { request } from 'undici'
import { startGateway } from './helpers/gateway.ts'
import { startDemoUpstream } from './helpers/upstreams.ts'

function hasSs (): boolean {
  try { execFileSync('ss', ['-V'], { stdio: 'ignore' }); return true } catch { return false }
}

test('downstream and upstream sockets of a stream carry keep-alive timers of tcpKeepAlive', { skip: hasSs() ? false : 'ss (iproute2) is not installed' }, async (t) => {
  const demo = await startDemoUpstream()
  const gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
downstream: { tcpKeepAlive: 17s }
upstreams: { demo: { endpoints: [${demo.url}], tcpKeepAlive: 13s } }
routes: [{ name: all, upstream: demo }]
`)
  t.after(async () => { await gw.stop(); await demo.close() })
  const gatewayPort = new URL(gw.url).port
  const res = await request(`${gw.url}/sse?chunks=1&stall-after=1`)
  try {
    // the first event is through: both connections are established (reading on, not breaking a
    // for-await loop, which would destroy the stream)
    await new Promise((resolve) => res.body.once('data', resolve))
    // ss -o prints `timer:(keepalive,<left>,0)` for a socket with SO_KEEPALIVE and its TCP_KEEPIDLE.
    const sockets = execFileSync('ss', ['-tnoH', 'state', 'established']).toString().split('\n')
    const downstream = sockets.find((l) => new RegExp(`127\\.0\\.0\\.1:${gatewayPort}\\s+127\\.0\\.0\\.1:\\d+`).test(l))
    const upstream = sockets.find((l) => new RegExp(`127\\.0\\.0\\.1:\\d+\\s+127\\.0\\.0\\.1:${demo.port}\\s`).test(l))
    assert.ok(downstream !== undefined, `no downstream socket in:\n${sockets.join('\n')}`)
    assert.ok(upstream !== undefined, `no upstream socket in:\n${sockets.join('\n')}`)
    // Both idle times are over 10 s, where ss prints whole seconds (`17sec`).
    const left = (line: string): number => {
      const m = /timer:\(keepalive,(\d+)sec/.exec(line)
      assert.ok(m !== null, `no keepalive timer in seconds on: ${line}`)
      return Number(m[1]) * 1000
    }
    const down = left(downstream)
    const up = left(upstream)
    assert.ok(down >= 15000 && down <= 17000, `downstream keepalive timer ${down} ms, expected just under 17 s`)
    assert.ok(up >= 11000 && up <= 13000, `upstream keepalive timer ${up} ms, expected just under 13 s`)
  } finally {
    res.body.on('error', () => {}).destroy()
  }
})
