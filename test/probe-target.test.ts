// The probe target in the demo upstream, over real sockets: each shape, what it stamps (arrival,
// headers, the end and who ended it, the connection's close and who closed it), and bad input.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { startDemoUpstream, type DemoUpstream } from '../src/demo/upstream.ts'
import type { ProbeSeen } from '../src/demo/probe-target.ts'
import { RawClient } from './helpers/raw-client.ts'

let up: DemoUpstream
before(async () => { up = await startDemoUpstream() })
after(async () => { await up.close() })

let seq = 0
const nextId = (): string => `t${++seq}`

async function get (path: string, init: Parameters<typeof request>[1] = {}): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, text: string }> {
  const res = await request(`${up.url}${path}`, init)
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() }
}

/** The target's record once `done` holds: read at once, and again when the request ends there. */
async function seenWhen (id: string, done: (s: ProbeSeen) => boolean): Promise<ProbeSeen> {
  const read = async (): Promise<ProbeSeen> => {
    const r = await get(`/longhaul-probe/seen?id=${id}`)
    assert.equal(r.status, 200, r.text)
    return JSON.parse(r.text) as ProbeSeen
  }
  // Listening before the first read: the end may come while that read is on its way.
  let ended: () => void = () => {}
  const end = new Promise<void>((resolve) => { ended = resolve })
  const on = (e: { path: string }): void => { if (e.path.includes(`id=${id}&`)) ended() }
  up.events.on('request-end', on)
  try {
    const first = await read()
    if (done(first)) return first
    await end
    const s = await read()
    assert.ok(done(s), JSON.stringify(s))
    return s
  } finally {
    up.events.off('request-end', on)
  }
}

describe('probe target', { timeout: 20_000 }, () => {
  test('hello: says it cooperates, under any path prefix, and reports the peer it saw', async () => {
    for (const path of ['/longhaul-probe/hello', '/some/app/longhaul-probe/hello']) {
      const r = await get(path)
      assert.equal(r.status, 200)
      const body = JSON.parse(r.text) as { probeTarget: string, protocol: number, shapes: Record<string, string>, peer: string }
      assert.equal(body.probeTarget, 'longhaul')
      assert.equal(body.protocol, 1)
      assert.deepEqual(Object.keys(body.shapes), ['hold-headers', 'silence', 'drip', 'upload', 'keep-alive'])
      assert.match(body.peer, /^127\.0\.0\.1:\d+$/)
    }
  })

  test('hold-headers: the headers come after ms; the record says when and that it completed', async () => {
    const id = nextId()
    const t0 = performance.now()
    const r = await get(`/longhaul-probe/run?id=${id}&shape=hold-headers&ms=300`)
    assert.ok(performance.now() - t0 >= 290)
    assert.equal(r.status, 200)
    assert.equal(r.headers['x-longhaul-probe'], id)
    assert.equal(r.text, `end ${id}\n`)
    const s = await seenWhen(id, (x) => x.end !== 'open')
    assert.equal(s.end, 'completed')
    assert.equal(s.shape, 'hold-headers')
    assert.ok(s.headersAfterMs! >= 290 && s.headersAfterMs! < 1000, String(s.headersAfterMs))
  })

  test('drip: a byte every `every` ms, then the end event, as an event stream', async () => {
    const id = nextId()
    const r = await get(`/longhaul-probe/run?id=${id}&shape=drip&ms=300&every=100`)
    assert.equal(r.headers['content-type'], 'text/event-stream')
    assert.equal(r.headers['x-accel-buffering'], 'no')
    assert.equal(r.text, `event: probe\ndata: start ${id}\n\n:\n:\n:\nevent: probe\ndata: end ${id}\n\n`)
  })

  test('silence cut by the client: the record says cancelled, and that the peer closed the connection', async () => {
    const id = nextId()
    const client = new RawClient(up.url)
    await client.send(`GET /longhaul-probe/run?id=${id}&shape=silence&ms=5000 HTTP/1.1\r\nhost: x\r\n\r\n`)
    await client.waitFor(new RegExp(`start ${id}`))
    client.socket.destroy()
    const s = await seenWhen(id, (x) => x.end !== 'open' && x.connectionClosedBy !== null)
    assert.equal(s.end, 'cancelled')
    assert.equal(s.connectionClosedBy, 'peer')
    assert.ok(s.endedAfterMs! < 2000)
  })

  test('keep-alive: the target\'s own idle close is stamped as the target\'s', async () => {
    // A target of its own with a short keep-alive (the shared one keeps connections for the test client).
    const short = await startDemoUpstream({ keepAliveTimeoutMs: 100 })
    try {
      const id = nextId()
      const client = new RawClient(short.url)
      await client.send(`GET /longhaul-probe/run?id=${id}&shape=keep-alive HTTP/1.1\r\nhost: x\r\n\r\n`)
      await client.closed
      const r = await request(`${short.url}/longhaul-probe/seen?id=${id}`)
      const s = await r.body.json() as ProbeSeen
      assert.equal(s.end, 'completed')
      assert.equal(s.connectionClosedBy, 'target')
      assert.ok(s.connectionClosedAfterMs! >= 90, String(s.connectionClosedAfterMs))
    } finally {
      await short.close()
    }
  })

  test('upload: read at whatever rate it comes; the longest gap between chunks is stamped', async () => {
    const id = nextId()
    const client = new RawClient(up.url)
    // The upload's silence (300 ms between the halves) is the point here.
    await client.send([`POST /longhaul-probe/run?id=${id}&shape=upload HTTP/1.1\r\nhost: x\r\ncontent-length: 8\r\n\r\nabcd`, () => sleep(300), 'efgh'])
    const got = await client.waitFor(new RegExp(`end ${id}`))
    client.socket.destroy()
    assert.match(got, new RegExp(`end ${id} bytes=8`))
    const s = await seenWhen(id, (x) => x.end !== 'open')
    assert.equal(s.bytesIn, 8)
    assert.ok(s.maxBodyGapMs! >= 250, String(s.maxBodyGapMs))
  })

  test('upload at a given rate: the target reads 64 KiB at 128 KiB/s, and the sender waits for it', async () => {
    const id = nextId()
    const t0 = performance.now()
    const r = await get(`/longhaul-probe/run?id=${id}&shape=upload&rate=131072`, { method: 'POST', body: Buffer.alloc(65536, 'r') })
    assert.equal(r.text, `end ${id} bytes=65536\n`)
    assert.ok(performance.now() - t0 >= 450, `took ${performance.now() - t0} ms`)
  })

  test('bad input gets a clear error and changes nothing', async () => {
    const id = nextId()
    const cases: Array<[string, number, RegExp]> = [
      [`/longhaul-probe/run?id=${id}&shape=sleep`, 400, /invalid shape: 'sleep' \(one of hold-headers, silence, drip, upload, keep-alive\)/],
      ['/longhaul-probe/run?id=a%20b&shape=drip', 400, /invalid id/],
      [`/longhaul-probe/run?id=${id}&shape=drip&ms=-1`, 400, /invalid ms: '-1'/],
      [`/longhaul-probe/run?id=${id}&shape=drip&ms=3600001`, 400, /invalid ms/],
      [`/longhaul-probe/run?id=${id}&shape=drip&every=0`, 400, /invalid every: '0'/],
      [`/longhaul-probe/run?id=${id}&shape=upload&rate=fast`, 400, /invalid rate: 'fast' \(an integer number of bytes per second/],
      ['/longhaul-probe/seen?id=never-sent', 404, /no probe request with id 'never-sent' reached the target/],
      ['/longhaul-probe/other', 404, /answers \/longhaul-probe\/hello, run and seen/],
    ]
    for (const [path, status, message] of cases) {
      const r = await get(path)
      assert.equal(r.status, status, path)
      assert.match(r.text, message, path)
    }
    // None of the refused runs left a record; the id is still free, and used once only.
    assert.equal((await get(`/longhaul-probe/seen?id=${id}`)).status, 404)
    assert.equal((await get(`/longhaul-probe/run?id=${id}&shape=keep-alive`)).status, 200)
    const again = await get(`/longhaul-probe/run?id=${id}&shape=keep-alive`)
    assert.equal(again.status, 409)
    assert.match(again.text, /already used/)
  })
})
