// A burst of connections (clients reconnecting after a deploy) is taken by the kernel at once:
// with Node's default listen backlog (511) the accept queue overflows, and every SYN dropped
// waits a second or more to be sent again.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { readFileSync } from 'node:fs'
import { startGateway } from './helpers/gateway.ts'

const BURST = 1500

function somaxconn (): number {
  try { return Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8')) } catch { return 0 }
}

test(`${BURST} connections opened at once are all established well within the 1 s a dropped SYN waits`, { skip: somaxconn() >= BURST ? false : 'net.core.somaxconn is below the burst' }, async (t) => {
  const gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams: { up: { endpoints: [http://127.0.0.1:9] } }
routes: [{ name: all, upstream: up }]
`)
  const sockets: net.Socket[] = []
  t.after(async () => {
    for (const s of sockets) s.destroy()
    await gw.stop()
  })
  const { port, hostname } = new URL(gw.url)
  const started = performance.now()
  await Promise.all(Array.from({ length: BURST }, () => new Promise<void>((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => resolve())
    socket.once('error', reject)
    sockets.push(socket)
  })))
  const elapsedMs = performance.now() - started
  // A SYN dropped by a full accept queue is sent again after 1 s at the earliest.
  assert.ok(elapsedMs < 900, `${BURST} connections took ${Math.round(elapsedMs)} ms: some waited for a SYN retransmit`)
})
