// downstream.idleTimeout on HTTP/1.1: an idle keep-alive connection is closed when the named limit
// says, not a second later (Node keeps one for its keepAliveTimeout plus a 1 s buffer), and the
// Keep-Alive hint it advertises comes before the close, so a client that follows it never races it.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { startGateway, type RunningGateway } from './helpers/gateway.ts'
import { startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { RawClient } from './helpers/raw-client.ts'

let demo: DemoUpstream
let gw: RunningGateway
after(async () => {
  await gw?.stop()
  await demo?.close()
})

test('an idle HTTP/1.1 client connection is closed at downstream.idleTimeout, after the hint it advertised', { timeout: 20_000 }, async () => {
  demo = await startDemoUpstream({ host: '127.0.0.1', port: 0 })
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
downstream: { idleTimeout: 1500ms }
upstreams: { demo: { endpoints: [${demo.url}] } }
routes: [{ name: all, upstream: demo }]
`)
  const client = new RawClient(gw.url)
  await client.send('GET /health HTTP/1.1\r\nhost: x\r\n\r\n')
  await client.waitFor(/\r\n\r\n[\s\S]*"status"/)
  const answeredAt = client.arrivals.at(-1)!.at
  await once(client.socket, 'end')
  const idleMs = performance.now() - answeredAt
  client.socket.destroy()
  const text = client.text()
  assert.match(text, /^HTTP\/1\.1 200/)
  const hint = /^keep-alive: timeout=(\d+)/im.exec(text)
  assert.ok(hint !== null, text)
  assert.ok(Number(hint[1]) * 1000 < 1500, `the advertised idle time (${hint[1]} s) comes before the close`)
  assert.ok(idleMs >= 1450 && idleMs < 1900, `closed after ${Math.round(idleMs)} ms idle, want 1500 ms`)
})
