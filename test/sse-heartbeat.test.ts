// SSE heartbeats (routes[].sse.heartbeat): a `: keepalive` comment goes downstream while an event
// stream is silent at an event boundary, never inside an event; it does not reset streamIdle;
// it keeps an outer load balancer's idle timer from cutting a healthy stream.
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import { EventBoundary, Heartbeat, type HeartbeatSink } from '../src/gateway/heartbeat.ts'
import { runCli, startGateway, writeConfig, type RunningGateway, prefixRoute } from './helpers/gateway.ts'
import { requestEndOf, startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { assertAccess, assertElapsed, rawExchange, sseRecords, errorRecordData } from './helpers/faults.ts'
import { startIdleProxy, type IdleProxy } from './helpers/idle-proxy.ts'

const KEEPALIVE = ': keepalive\n\n'

let demo: DemoUpstream
let gw: RunningGateway
let proxy: IdleProxy

before(async () => {
  demo = await startDemoUpstream()
  const route = prefixRoute
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams:
  demo: { endpoints: [${demo.url}] }
routes:
${route('hb', '    sse: { heartbeat: 200ms }')}
${route('hb-idle', '    sse: { heartbeat: 200ms }\n    timeouts: { streamIdle: 700ms }')}
${route('lb-hb', '    sse: { heartbeat: 600ms }')}
${route('lb-none', '')}
`)
  // The outer load balancer in front of the gateway: 1 s of silence and the connection is cut.
  proxy = await startIdleProxy(gw.url, 1000)
})

after(async () => {
  await proxy?.close()
  await gw?.stop()
  await demo?.close()
})

function ticks (from: number, to: number): string {
  let text = ''
  for (let i = from; i <= to; i++) text += `id: ${i}\nevent: tick\ndata: {"i":${i}}\n\n`
  return text
}

/** A GET through undici; every body chunk with its arrival time. */
async function stream (url: string, requestId: string): Promise<{ status: number, text: string, chunks: Array<{ at: number, text: string }> }> {
  const res = await request(url, { headers: { 'x-request-id': requestId } })
  const chunks: Array<{ at: number, text: string }> = []
  for await (const chunk of res.body) chunks.push({ at: performance.now(), text: (chunk as Buffer).toString() })
  return { status: res.statusCode, text: chunks.map((c) => c.text).join(''), chunks }
}

async function heartbeatsCounted (route: string): Promise<number> {
  const text = await (await request(`${gw.adminUrl}/metrics`)).body.text()
  const match = new RegExp(`^longhaul_sse_heartbeats_total\\{route="${route}"\\} (\\d+)$`, 'm').exec(text)
  return match === null ? 0 : Number(match[1])
}

describe('EventBoundary: where an SSE event ends', () => {
  const cases: Array<[string, string[], boolean]> = [
    ['nothing forwarded yet', [], true],
    ['an event ended by LF LF', ['data: a\n\n'], true],
    ['an event ended by CRLF CRLF', ['data: a\r\n\r\n'], true],
    ['an event ended by CR CR', ['data: a\r\r'], true],
    ['a line, not yet the blank one', ['data: a\n'], false],
    ['one CRLF only', ['data: a\r\n'], false],
    ['the middle of a line', ['data: a'], false],
    ['the blank line in a chunk of its own', ['data: a\n', '\n'], true],
    ['a CRLF CRLF split in the middle', ['data: a\r\n\r', '\n'], true],
    ['a CRLF split across chunks is one line end', ['data: a\r', '\n'], false],
    ['a comment line inside an event', ['data: a\n: note\n'], false],
    ['after the end, a new event has begun', ['data: a\n\n', 'data: b'], false],
    ['an empty chunk changes nothing', ['data: a\n\n', ''], true]
  ]
  for (const [name, chunks, expected] of cases) {
    test(name, () => {
      const b = new EventBoundary()
      for (const c of chunks) b.push(Buffer.from(c))
      assert.equal(b.atBoundary, expected)
    })
  }
})

describe('Heartbeat on its response', () => {
  /** The heartbeat's first firing, on a response in `state`: what it wrote by then. */
  async function firstFiring (state: 'open' | 'ended' | 'destroyed'): Promise<string[]> {
    const written: string[] = []
    const response = { writableLength: 0, writableHighWaterMark: 16384, writableEnded: state === 'ended', destroyed: state === 'destroyed', write: (chunk: Buffer) => written.push(chunk.toString()) > 0 }
    let heartbeat: Heartbeat | undefined
    await new Promise<void>((resolve) => {
      // The constructor reads nothing of the response: the first read is the timer firing.
      const sink = new Proxy(response, { get: (target, key) => { setImmediate(resolve); return Reflect.get(target, key) } })
      heartbeat = new Heartbeat(20, sink as unknown as HeartbeatSink, () => {})
    })
    heartbeat!.stop()
    return written
  }

  test('a silence at an event boundary gets a comment', async () => {
    assert.deepEqual(await firstFiring('open'), [KEEPALIVE])
  })

  // A write after end() throws ERR_STREAM_WRITE_AFTER_END on HTTP/1.1, which exits the process.
  test('a response that has ended or is destroyed gets nothing', async () => {
    assert.deepEqual(await firstFiring('ended'), [])
    assert.deepEqual(await firstFiring('destroyed'), [])
  })
})

describe('sse.heartbeat', { concurrency: true }, () => {
  test('a silence between events gets a comment every interval; the events arrive untouched and counted once', async () => {
    const id = `hb-${randomUUID()}`
    const before = await heartbeatsCounted('hb')
    const res = await stream(`${gw.url}/hb/sse?chunks=2&interval-ms=10&pause-after=1&pause-ms=1000`, id)
    assert.equal(res.status, 200)
    const comments = res.text.split(KEEPALIVE).length - 1
    // 1000 ms of silence at 200 ms: four or five
    assert.ok(comments >= 3 && comments <= 5, `${comments} heartbeats in ${JSON.stringify(res.text)}`)
    // all of them between the two events, and nothing else changed
    assert.equal(res.text, ticks(1, 1) + KEEPALIVE.repeat(comments) + ticks(2, 2))
    // paced by the interval, not sent in a burst
    const times = res.chunks.filter((c) => c.text === KEEPALIVE).map((c) => c.at)
    for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! >= 150, `heartbeats ${Math.round(times[i]! - times[i - 1]!)} ms apart`)
    const line = await gw.accessLine(id)
    assertAccess(line, { outcome: 'ok', status: 200 })
    // bytesOut counts what the upstream sent
    assert.equal(line.bytesOut, Buffer.byteLength(ticks(1, 2)))
    assert.equal(await heartbeatsCounted('hb') - before >= comments, true)
  })

  test('an upstream that pauses mid-event gets no comment until the event is complete', async () => {
    const id = `hb-mid-${randomUUID()}`
    // event 1 at 500 ms; event 2's first line at 1000 ms, its rest 1000 ms later; event 3 at 2500 ms
    const res = await stream(`${gw.url}/hb/sse?chunks=3&interval-ms=500&pause-after=1&pause-ms=1000&pause-mid-event=1`, id)
    assert.equal(res.status, 200)
    // the stream's own bytes, in order, with the event that paused in one piece
    assert.equal(res.text.replaceAll(KEEPALIVE, ''), ticks(1, 3))
    assert.ok(res.text.includes(ticks(2, 2)), `a comment went inside event 2: ${JSON.stringify(res.text)}`)
    // heartbeats did run at the boundaries: in the silences before event 2 and before event 3
    const [beforeTwo, afterTwo] = res.text.split(ticks(2, 2)) as [string, string]
    assert.ok(beforeTwo.includes(KEEPALIVE), JSON.stringify(res.text))
    assert.ok(afterTwo.includes(KEEPALIVE), JSON.stringify(res.text))
    // and the pause inside event 2 was a real one (the first line came a second before the rest)
    const firstLine = res.chunks.findIndex((c) => c.text === 'id: 2\n')
    assert.notEqual(firstLine, -1, JSON.stringify(res.chunks.map((c) => c.text)))
    const rest = res.chunks[firstLine + 1]!
    assert.equal(rest.text, 'event: tick\ndata: {"i":2}\n\n')
    assert.ok(rest.at - res.chunks[firstLine]!.at >= 900, `the rest of event 2 came ${Math.round(rest.at - res.chunks[firstLine]!.at)} ms later`)
    assertAccess(await gw.accessLine(id), { outcome: 'ok', status: 200 })
  })

  test('heartbeats do not reset streamIdle: a stalled upstream is still cut on time, with the error record', async () => {
    const id = `hb-idle-${randomUUID()}`
    const ended = requestEndOf(demo, id)
    const res = await rawExchange(gw.url, `GET /hb-idle/sse?chunks=5&interval-ms=10&stall-after=1 HTTP/1.1\r\nHost: gateway.test\r\nx-request-id: ${id}\r\nConnection: close\r\n\r\n`)
    assert.equal(res.status, 200)
    assert.equal(res.complete, false)
    const text = res.body.toString()
    const comments = text.split(KEEPALIVE).length - 1
    assert.ok(comments >= 2 && comments <= 3, `${comments} heartbeats in 700 ms at 200 ms`)
    const records = sseRecords(text).filter((r) => r.event !== 'message')
    assert.deepEqual(records.map((r) => r.event), ['tick', 'error'])
    const data = errorRecordData(records[1]!)
    assert.equal(data.code, 'stream_idle_timeout')
    assertElapsed(data.elapsedMs, 700, 'stream_idle_timeout')
    assertAccess(await gw.accessLine(id), { outcome: 'stream_idle_timeout', status: 200, limitMs: 700 })
    assert.equal((await ended).aborted, true)
  })

  test('behind a load balancer with a 1 s idle timeout, a 2.5 s silent stream survives with a 600 ms heartbeat', async () => {
    const id = `lb-hb-${randomUUID()}`
    const res = await rawExchange(proxy.url, `GET /lb-hb/sse?chunks=2&interval-ms=10&pause-after=0&pause-ms=2500 HTTP/1.1\r\nHost: gateway.test\r\nx-request-id: ${id}\r\nConnection: close\r\n\r\n`)
    assert.equal(res.status, 200)
    assert.equal(res.complete, true, 'the stream was cut')
    const text = res.body.toString()
    assert.equal(text.replaceAll(KEEPALIVE, ''), ticks(1, 2))
    const comments = text.split(KEEPALIVE).length - 1
    assert.ok(comments >= 3 && comments <= 4, `${comments} heartbeats in 2.5 s at 600 ms`)
    assertAccess(await gw.accessLine(id), { outcome: 'ok', status: 200 })
  })

  test('…and without one, the load balancer cuts it after 1 s (client_aborted, upstream aborted)', async () => {
    const id = `lb-none-${randomUUID()}`
    const ended = requestEndOf(demo, id)
    const res = await rawExchange(proxy.url, `GET /lb-none/sse?chunks=2&interval-ms=10&pause-after=0&pause-ms=2500 HTTP/1.1\r\nHost: gateway.test\r\nx-request-id: ${id}\r\nConnection: close\r\n\r\n`)
    assert.equal(res.status, 200)
    assert.equal(res.complete, false)
    assert.equal(res.body.toString(), '')
    const tookMs = res.closedAt - res.sentAt
    assert.ok(tookMs >= 950 && tookMs < 2000, `cut after ${Math.round(tookMs)} ms`)
    assertAccess(await gw.accessLine(id), { outcome: 'client_aborted', status: 200 })
    assert.equal((await ended).aborted, true)
  })
})

describe('sse.heartbeat in the config', () => {
  const config = (sse: string, timeouts = ''): string => `
upstreams:
  demo: { endpoints: [http://127.0.0.1:8000] }
routes:
  - name: chat
    upstream: demo
    sse: ${sse}
${timeouts}`

  test('a heartbeat not shorter than streamIdle is a warning at the key: it would never go out', async () => {
    const { path } = await writeConfig(config('{ heartbeat: 2m }', '    timeouts: { streamIdle: 90s }'))
    const r = await runCli(['check', '--config', path])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /longhaul\.yaml:7:\d+ routes\[0\]\.sse\.heartbeat: warning: heartbeat \(2m\) is not shorter than streamIdle \(90s\)/)
  })

  test('a heartbeat under 100ms, or without a unit, is an error', async () => {
    for (const [value, message] of [['10ms', /heartbeat must be at least 100ms/], ['15', /a bare number is not a duration/]] as const) {
      const { path } = await writeConfig(config(`{ heartbeat: ${value} }`))
      const r = await runCli(['check', '--config', path])
      assert.equal(r.code, 1, `${value}: ${r.stderr}`)
      assert.match(r.stderr, message)
    }
  })
})
