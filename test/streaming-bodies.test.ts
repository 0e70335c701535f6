// Big and slow bodies through the real gateway process (principle 5: stream, never buffer):
// 50 MB each way with the gateway's peak RSS watched, an echo both ways at once, maxBodySize
// declared and discovered mid-stream, and a slow but steady upload under bodyIdleTimeout.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { startGateway, type RunningGateway } from './helpers/gateway.ts'
import { startDemoUpstream, requestEndOf, type DemoUpstream } from './helpers/upstreams.ts'
import { RawClient } from './helpers/raw-client.ts'

const MiB = 1024 * 1024
const BIG = 50 * MiB // 52428800
const CHUNK = 64 * 1024
// The demo's /bytes/<n> body: this pattern repeated from offset 0.
const PATTERN = Buffer.from('abcdefghijklmnopqrstuvwxyz0123456789\n')

let demo: DemoUpstream
/** maxBodySize 256MiB (the memory test uploads 200 MiB); bodyIdleTimeout 1s, shorter than the slow upload as a whole. */
let gw: RunningGateway
/** maxBodySize 1MiB, for the over-the-limit bodies. */
let small: RunningGateway
let baselineHwmKb: number | null = null
/** Bytes moved through `gw` by the big-transfer tests; the memory test needs them to mean anything. */
let bigBytes = 0

function config (downstream: string): string {
  return `
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
downstream: ${downstream}
upstreams:
  demo: { endpoints: [${demo.url}] }
routes:
  - name: all
    match: { pathPrefix: / }
    upstream: demo
`
}

/** Peak resident set size of a process in kB (Linux), or null where /proc is not there. */
function peakRssKb (pid: number): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? null : Number(m[1])
  } catch {
    return null
  }
}

/** `total` bytes in CHUNK pieces, made as they are pulled: the test never holds the body either. */
function generated (total: number, make: (len: number) => Buffer): Readable {
  return Readable.from((function * () {
    for (let sent = 0; sent < total; sent += CHUNK) yield make(Math.min(CHUNK, total - sent))
  })(), { objectMode: false })
}

before(async () => {
  demo = await startDemoUpstream()
  gw = await startGateway(config('{ maxBodySize: 256MiB, bodyIdleTimeout: 1s }'))
  small = await startGateway(config('{ maxBodySize: 1MiB }'))
  // Warm up both directions so that code loaded on first use is in the baseline, not the growth.
  const up = await request(`${gw.url}/upload`, { method: 'POST', body: randomBytes(MiB) })
  await up.body.text()
  const down = await request(`${gw.url}/bytes/${MiB}`)
  await down.body.dump()
  baselineHwmKb = peakRssKb(gw.process.pid!)
})

after(async () => {
  await gw?.stop()
  await small?.stop()
  await demo?.close()
})

test('a 50 MB upload, generated as a stream, arrives whole at the upstream', async () => {
  const id = randomUUID()
  const ended = requestEndOf(demo, id, 30_000)
  const block = randomBytes(CHUNK)
  const res = await request(`${gw.url}/upload`, {
    method: 'POST',
    headers: { 'x-request-id': id, 'content-length': String(BIG), 'content-type': 'application/octet-stream' },
    body: generated(BIG, (len) => block.subarray(0, len))
  })
  assert.equal(res.statusCode, 200)
  assert.deepEqual(await res.body.json(), { bytes: BIG })
  const line = await gw.accessLine(id)
  assert.equal(line.outcome, 'ok')
  assert.equal(line.bytesIn, BIG)
  const end = await ended
  assert.equal(end.completed, true)
  assert.equal(end.bytesIn, BIG)
  bigBytes += BIG
})

test('a 50 MB download arrives byte-exact in length and content pattern', async () => {
  const id = randomUUID()
  const res = await request(`${gw.url}/bytes/${BIG}`, { headers: { 'x-request-id': id } })
  assert.equal(res.statusCode, 200)
  assert.equal(res.headers['content-length'], String(BIG))
  let offset = 0
  let mismatches = 0
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    // Spot-check: the first and last byte of every chunk against the pattern at that offset.
    if (chunk[0] !== PATTERN[offset % PATTERN.length]) mismatches++
    const last = offset + chunk.length - 1
    if (chunk[chunk.length - 1] !== PATTERN[last % PATTERN.length]) mismatches++
    offset += chunk.length
  }
  assert.equal(offset, BIG)
  assert.equal(mismatches, 0)
  const line = await gw.accessLine(id)
  assert.equal(line.outcome, 'ok')
  assert.equal(line.bytesOut, BIG)
  bigBytes += BIG
})

test('20 MB through /echo both ways at once: the bytes that come back hash like the bytes sent', async () => {
  const id = randomUUID()
  const total = 20 * MiB
  const sent = createHash('sha256')
  const received = createHash('sha256')
  const res = await request(`${gw.url}/echo`, {
    method: 'POST',
    headers: { 'x-request-id': id, 'content-type': 'application/octet-stream' },
    body: generated(total, (len) => {
      const chunk = randomBytes(len)
      sent.update(chunk)
      return chunk
    })
  })
  assert.equal(res.statusCode, 200)
  let length = 0
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    received.update(chunk)
    length += chunk.length
  }
  assert.equal(length, total)
  assert.equal(received.digest('hex'), sent.digest('hex'))
  const line = await gw.accessLine(id)
  assert.equal(line.outcome, 'ok')
  assert.equal(line.bytesIn, total)
  assert.equal(line.bytesOut, total)
  bigBytes += 2 * total
})

/** A body of `total` bytes through the gateway each way, with nothing kept by the test. */
async function uploadThrough (total: number): Promise<void> {
  const block = randomBytes(CHUNK)
  const res = await request(`${gw.url}/upload`, { method: 'POST', body: generated(total, (len) => block.subarray(0, len)) })
  assert.deepEqual(await res.body.json(), { bytes: total })
}
async function downloadThrough (total: number): Promise<void> {
  const res = await request(`${gw.url}/bytes/${total}`)
  let length = 0
  for await (const chunk of res.body as AsyncIterable<Buffer>) length += chunk.length
  assert.equal(length, total)
}

// V8 frees a dead Buffer's memory only when it collects, and it lets up to about 64 MB of such
// external memory pile up before it does (its external-memory GC trigger): the first 50 MB through
// the gateway raise its peak RSS by some 45-90 MB although nothing is held. So the peak is read
// twice: after the 50 MB transfers (the garbage allowance reached, reported), and after 400 MB
// more, where a streaming gateway stays flat and a buffering one grows by a 200 MB body.
test('the gateway\'s peak memory stays bounded: 400 MB more through it barely moves its peak RSS', async (t) => {
  if (baselineHwmKb === null || peakRssKb(gw.process.pid!) === null) return t.skip('no /proc/<pid>/status VmHWM on this system')
  if (bigBytes < 2 * BIG) {
    // Run alone: make the 50 MB transfers here, so that the allowance is reached first.
    await uploadThrough(BIG)
    await downloadThrough(BIG)
    bigBytes += 2 * BIG
  }
  const afterFifty = peakRssKb(gw.process.pid!)!
  await uploadThrough(4 * BIG)
  await downloadThrough(4 * BIG)
  const afterMore = peakRssKb(gw.process.pid!)!
  const mib = (kb: number): string => (kb / 1024).toFixed(1)
  t.diagnostic(`gateway VmHWM: ${mib(baselineHwmKb)} MiB at start, ${mib(afterFifty)} MiB after the 50 MB transfers (+${mib(afterFifty - baselineHwmKb)} MiB over ${(bigBytes / MiB).toFixed(0)} MiB moved), ${mib(afterMore)} MiB after 400 MiB more (+${mib(afterMore - afterFifty)} MiB)`)
  assert.ok(afterMore - afterFifty < 40 * 1024, `peak RSS grew by ${afterMore - afterFifty} kB while 400 MiB more streamed through`)
  assert.ok(afterMore - baselineHwmKb < 150 * 1024, `peak RSS grew by ${afterMore - baselineHwmKb} kB in all: a 200 MiB body held whole would do that`)
})

test('a body declared over maxBodySize is refused 413 at once; the upstream is never contacted', async () => {
  const id = randomUUID()
  let contacted = false
  const onRequest = (e: { headers: Record<string, unknown> }): void => { if (e.headers['x-request-id'] === id) contacted = true }
  demo.events.on('request', onRequest)
  const client = new RawClient(small.url)
  try {
    // The head alone: no body byte is ever sent, so only an answer from the head can come back.
    await client.send(`POST /upload HTTP/1.1\r\nhost: x\r\nx-request-id: ${id}\r\ncontent-length: ${2 * MiB}\r\n\r\n`)
    const { status, headers, body } = await client.response()
    const answeredAt = client.arrivals.at(-1)!.at
    assert.equal(status, 413)
    assert.equal(headers['x-longhaul-error'], 'payload_too_large')
    assert.equal(headers.connection, 'close')
    assert.equal(JSON.parse(body).error.code, 'payload_too_large')
    assert.ok(answeredAt - client.sentAt < 1000, `answered after ${Math.round(answeredAt - client.sentAt)} ms`)
    const line = await small.accessLine(id)
    assert.equal(line.outcome, 'payload_too_large')
    assert.equal(line.status, 413)
    assert.equal(line.endpoint, null)
    await assert.rejects(requestEndOf(demo, id, 300), /no matching request-end/)
    assert.equal(contacted, false)
  } finally {
    demo.events.off('request', onRequest)
    client.socket.destroy()
  }
})

test('a chunked body that grows past maxBodySize mid-stream: 413, the upstream request aborted', async () => {
  const id = randomUUID()
  const ended = requestEndOf(demo, id)
  const client = new RawClient(small.url)
  const { socket } = client
  try {
    await client.send(`POST /upload HTTP/1.1\r\nhost: x\r\nx-request-id: ${id}\r\ntransfer-encoding: chunked\r\ncontent-type: application/octet-stream\r\n\r\n`)
    const response = client.response(10_000)
    let answered = false
    const settled = response.then(() => { answered = true }, () => { answered = true })
    const frame = Buffer.concat([Buffer.from(`${CHUNK.toString(16)}\r\n`), randomBytes(CHUNK), Buffer.from('\r\n')])
    let sent = 0
    // Keep sending (never the last chunk) until the gateway answers, up to twice the limit.
    while (!answered && sent < 2 * MiB && !socket.destroyed) {
      if (!socket.write(frame)) await Promise.race([once(socket, 'drain').catch(() => {}), settled])
      sent += CHUNK
    }
    const { status, headers, body } = await response
    assert.equal(status, 413)
    assert.equal(headers['x-longhaul-error'], 'payload_too_large')
    assert.equal(JSON.parse(body).error.code, 'payload_too_large')
    const end = await ended
    assert.equal(end.aborted, true, `upstream request-end ${JSON.stringify({ completed: end.completed, aborted: end.aborted, bytesIn: end.bytesIn })}`)
    assert.ok(end.bytesIn <= MiB, `the upstream got ${end.bytesIn} bytes, more than maxBodySize`)
    const line = await small.accessLine(id)
    assert.equal(line.outcome, 'payload_too_large')
    assert.equal(line.status, 413)
    assert.ok((line.bytesIn as number) > MiB, `bytesIn ${String(line.bytesIn)}`)
  } finally {
    socket.destroy()
  }
})

test('a body that grows past maxBodySize after the response started: the response is cut, never ended cleanly', async () => {
  const id = randomUUID()
  const ended = requestEndOf(demo, id)
  const client = new RawClient(small.url)
  const { socket } = client
  try {
    // /echo answers at once and streams the body back: its 200 is out before the limit is hit.
    const frame = Buffer.concat([Buffer.from(`${CHUNK.toString(16)}\r\n`), randomBytes(CHUNK), Buffer.from('\r\n')])
    // The first chunk, and its echo back: from here on the response has started.
    await client.send([`POST /echo HTTP/1.1\r\nhost: x\r\nx-request-id: ${id}\r\ntransfer-encoding: chunked\r\ncontent-type: application/octet-stream\r\n\r\n`, frame])
    let sent = CHUNK
    await client.until((received) => received.length > CHUNK)
    assert.match(client.text(), /^HTTP\/1\.1 200 /)
    while (sent < 2 * MiB && !socket.destroyed && socket.readable) {
      if (!socket.write(frame)) await Promise.race([once(socket, 'drain').catch(() => {}), client.closed])
      sent += CHUNK
    }
    await client.closed
    // Principle 6: no terminating zero-length chunk, the connection is just closed.
    assert.doesNotMatch(client.text(), /\r\n0\r\n\r\n$/)
    const end = await ended
    assert.equal(end.aborted, true)
    const line = await small.accessLine(id)
    assert.equal(line.outcome, 'payload_too_large')
    assert.equal(line.status, 200)
  } finally {
    socket.destroy()
  }
})

test('a slow but steady upload (20 × 256 KiB, one every 100 ms) outlasts bodyIdleTimeout 1s and completes', async () => {
  const id = randomUUID()
  const piece = randomBytes(256 * 1024)
  async function * slow (): AsyncGenerator<Buffer> {
    for (let i = 0; i < 20; i++) {
      // The pacing is the scenario: a client on a slow link, never silent for long.
      if (i > 0) await sleep(100)
      yield piece
    }
  }
  const res = await request(`${gw.url}/upload`, {
    method: 'POST',
    headers: { 'x-request-id': id, 'content-type': 'application/octet-stream' },
    body: Readable.from(slow(), { objectMode: false })
  })
  assert.equal(res.statusCode, 200)
  assert.deepEqual(await res.body.json(), { bytes: 20 * 256 * 1024 })
  const line = await gw.accessLine(id)
  assert.equal(line.outcome, 'ok')
  assert.equal(line.bytesIn, 20 * 256 * 1024)
  // Longer than the 1 s bodyIdleTimeout as a whole: the limit is on silence, not on the body.
  assert.ok((line.durationMs as number) >= 1800, `durationMs ${String(line.durationMs)}`)
})

test('20 MiB at a steady 1 MiB/s through bodyIdleTimeout 2s completes: the limit is on silence, not on length', async (t) => {
  const slowGw = await startGateway(config('{ bodyIdleTimeout: 2s }'))
  t.after(() => slowGw.stop())
  const id = randomUUID()
  const piece = randomBytes(64 * 1024)
  const pieces = 20 * 16 // 20 MiB in 64 KiB pieces, 16 per second
  async function * steady (): AsyncGenerator<Buffer> {
    const start = performance.now()
    for (let i = 0; i < pieces; i++) {
      // Paced against the clock, not per piece, so the rate stays 1 MiB/s on a loaded machine.
      const due = start + i * 62.5
      const wait = due - performance.now()
      if (wait > 0) await sleep(wait)
      yield piece
    }
  }
  const res = await request(`${slowGw.url}/upload`, {
    method: 'POST',
    headers: { 'x-request-id': id, 'content-type': 'application/octet-stream' },
    body: Readable.from(steady(), { objectMode: false })
  })
  assert.equal(res.statusCode, 200)
  assert.deepEqual(await res.body.json(), { bytes: 20 * 1024 * 1024 })
  const line = await slowGw.accessLine(id)
  assert.equal(line.outcome, 'ok')
  assert.equal(line.bytesIn, 20 * 1024 * 1024)
  assert.ok((line.durationMs as number) >= 19_000, `durationMs ${String(line.durationMs)}`)
})
