// The system curl over h2c: a stream cut after its headers shows the error record every time,
// then ends with exit 92 (RST_STREAM INTERNAL_ERROR). curl 7.88 (Debian 12) drops DATA that it
// reads together with the RST_STREAM that follows it; the gateway resets a cut stream only once
// the client has answered a PING sent after the record (so it has read the record), within a
// bound: a client that does not answer does not hold the stream longer than that.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import http2 from 'node:http2'
import net from 'node:net'
import { randomUUID } from 'node:crypto'
import { startGateway, type RunningGateway } from './helpers/gateway.ts'
import { startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { LATE_MS } from './helpers/faults.ts'

const curlVersion = ((): string => {
  try { return execFileSync('curl', ['--version'], { encoding: 'utf8' }) } catch { return '' }
})()
const skip = /^Features:.*\bHTTP2\b/m.test(curlVersion) ? false : 'no system curl with HTTP/2 support'

const STREAM_IDLE_MS = 300
// The longest the gateway waits for the PING's answer before it resets a cut stream anyway.
const RESET_WAIT_MS = 1000

let demo: DemoUpstream
let gw: RunningGateway
let url: string

before(async () => {
  if (skip !== false) return
  demo = await startDemoUpstream()
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0, protocol: h2c }]
admin: { address: 127.0.0.1:0 }
upstreams:
  demo: { endpoints: [${demo.url}] }
routes:
  - name: chat
    upstream: demo
    timeouts: { streamIdle: ${STREAM_IDLE_MS}ms }
`)
  url = `http://${gw.addresses[0]!}/v1/chat/completions`
})

after(async () => {
  await gw?.stop()
  await demo?.close()
})

const stallArgs = (requestId: string): string[] => [
  '-sS', '-N', '--http2-prior-knowledge', url, '-d', '{"stream":true}',
  '-H', 'x-demo-stall-after: 2', '-H', 'x-demo-interval-ms: 10', '-H', `x-request-id: ${requestId}`
]

function curl (args: string[]): Promise<{ code: number, output: string }> {
  return new Promise((resolve) => {
    execFile('curl', args, { timeout: 10_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : Number((err as { code?: number }).code), output: stdout + stderr })
    })
  })
}

test('20 stalled streams through curl --http2-prior-knowledge: the record printed 20 times, exit 92 each time', { skip }, async () => {
  const runs: Array<{ code: number, output: string }> = []
  // Four at a time: a loaded machine is where DATA and RST_STREAM arrive together.
  for (let round = 0; round < 5; round++) {
    runs.push(...await Promise.all(Array.from({ length: 4 }, () => curl(stallArgs(randomUUID())))))
  }
  const printed = runs.filter((r) => /^event: error\ndata: \{"type":"error","error":\{"type":"stream_idle_timeout","code":"stream_idle_timeout",/m.test(r.output))
  assert.equal(printed.length, 20, runs.find((r) => !printed.includes(r))?.output)
  assert.deepEqual(runs.map((r) => r.code), Array(20).fill(92))
  for (const r of runs) assert.match(r.output, /curl: \(92\) HTTP\/2 stream 1 was not closed cleanly: INTERNAL_ERROR \(err 2\)/)
})

interface Frame { from: 'server' | 'client', type: number, stream: number, flags: number, at: number }

/** Reads HTTP/2 frame headers off a byte stream as it passes (after `skip` bytes of preface). */
function frameReader (from: Frame['from'], frames: Frame[], skip: number): (chunk: Buffer) => void {
  let pending = Buffer.alloc(0)
  return (chunk) => {
    pending = Buffer.concat([pending, chunk])
    if (skip > 0) {
      const n = Math.min(skip, pending.length)
      pending = pending.subarray(n)
      skip -= n
    }
    while (pending.length >= 9) {
      const length = pending.readUIntBE(0, 3)
      if (pending.length < 9 + length) break
      frames.push({ from, type: pending[3]!, flags: pending[4]!, stream: pending.readUInt32BE(5) & 0x7fffffff, at: performance.now() })
      pending = pending.subarray(9 + length)
    }
  }
}

/**
 * A TCP relay in front of the gateway that notes the HTTP/2 frames both ways (type and time)
 * and, once `hold` is set, stops passing the gateway's to the client: a client that hears
 * nothing more.
 */
async function frameRelay (target: string): Promise<{ url: string, frames: Frame[], hold: () => void, close: () => void }> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))]
  const frames: Frame[] = []
  let held = false
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    const upstream = net.connect(port, host)
    sockets.add(client).add(upstream)
    client.on('error', () => {})
    upstream.on('error', () => {})
    // The client's connection preface (24 bytes) comes before its first frame; a server has none.
    const fromClient = frameReader('client', frames, 24)
    const fromServer = frameReader('server', frames, 0)
    client.on('data', (chunk: Buffer) => { fromClient(chunk); upstream.write(chunk) })
    upstream.on('data', (chunk: Buffer) => { fromServer(chunk); if (!held) client.write(chunk) })
    upstream.on('close', () => client.destroy())
    client.on('close', () => upstream.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    frames,
    hold: () => { held = true },
    close: () => { for (const socket of sockets) socket.destroy(); server.close() }
  }
}

const DATA = 0
const RST_STREAM = 3
const PING = 6

test('the reset waits for the answer to a PING sent after the record; a client that does not answer is reset after the bound', { skip }, async () => {
  const relay = await frameRelay(gw.addresses[0]!)
  after(() => relay.close())
  const session = http2.connect(relay.url)
  after(() => session.destroy())
  const requestId = randomUUID()
  const stream = session.request({ ':method': 'POST', ':path': '/v1/chat/completions', 'x-demo-stall-after': '2', 'x-demo-interval-ms': '10', 'x-request-id': requestId })
  stream.on('error', () => {})
  stream.end('{"stream":true}')
  // The client hears the first token, then nothing more: it answers no PING.
  await new Promise<void>((resolve) => stream.once('data', () => resolve()))
  relay.hold()
  const line = await gw.accessLine(requestId, STREAM_IDLE_MS + RESET_WAIT_MS + 3000)
  assert.equal(line.outcome, 'stream_idle_timeout')
  const deadline = performance.now() + RESET_WAIT_MS + 3000
  while (!relay.frames.some((f) => f.type === RST_STREAM) && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  const ping = relay.frames.find((f) => f.from === 'server' && f.type === PING && (f.flags & 1) === 0)
  const reset = relay.frames.find((f) => f.from === 'server' && f.type === RST_STREAM && f.stream === 1)
  assert.ok(ping !== undefined && reset !== undefined, JSON.stringify(relay.frames))
  const lastData = relay.frames.filter((f) => f.from === 'server' && f.type === DATA && f.stream === 1).at(-1)!
  assert.ok(lastData.at <= ping.at, 'the PING follows the record')
  const waited = reset.at - ping.at
  assert.ok(waited >= RESET_WAIT_MS - 50 && waited <= RESET_WAIT_MS + LATE_MS, `RST_STREAM ${waited} ms after the unanswered PING`)
})

test('streams cut together on one session share PINGs, and each is reset only after an answer to a PING sent after its record', { skip }, async () => {
  const relay = await frameRelay(gw.addresses[0]!)
  after(() => relay.close())
  const session = http2.connect(relay.url)
  after(() => session.destroy())
  // Twelve streams that stall together: more than the 10 unanswered PINGs Node allows a session.
  const bodies = await Promise.all(Array.from({ length: 12 }, () => new Promise<string>((resolve) => {
    const stream = session.request({ ':method': 'POST', ':path': '/v1/chat/completions', 'x-demo-stall-after': '2', 'x-demo-interval-ms': '10' })
    let body = ''
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => { body += chunk })
    stream.on('error', () => {})
    stream.on('close', () => resolve(body))
    stream.end('{"stream":true}')
  })))
  for (const body of bodies) assert.match(body, /\nevent: error\ndata: \{"type":"error","error":\{"type":"stream_idle_timeout"/)
  const server = relay.frames.filter((f) => f.from === 'server')
  const pings = server.filter((f) => f.type === PING && (f.flags & 1) === 0)
  const answers = relay.frames.filter((f) => f.from === 'client' && f.type === PING && (f.flags & 1) === 1)
  const resets = server.filter((f) => f.type === RST_STREAM)
  assert.equal(resets.length, 12)
  assert.ok(pings.length < 12, `${pings.length} PINGs for 12 cuts`)
  for (const reset of resets) {
    const record = server.filter((f) => f.type === DATA && f.stream === reset.stream).at(-1)!
    // A PING sent after the record, answered before the reset.
    const answered = pings.some((p, i) => p.at >= record.at && answers[i] !== undefined && answers[i]!.at <= reset.at)
    assert.ok(answered, `stream ${reset.stream}: reset without an answered PING after its record`)
  }
})
