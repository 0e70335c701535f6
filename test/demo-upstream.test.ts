// The demo upstream over real sockets: endpoints, every fault knob, and its 'request-end' events.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Client } from 'undici'
import { DEMO_KNOBS, startDemoUpstream } from '../src/demo/upstream.ts'
import type { DemoRequestEnd, DemoUpstream } from '../src/demo/upstream.ts'
import { RawClient } from './helpers/raw-client.ts'

let up: DemoUpstream
let client: Client // shared keep-alive client for the well-behaved requests

before(async () => {
  up = await startDemoUpstream()
  client = new Client(up.url)
})

after(async () => {
  await client.close()
  await up.close()
})

let tagSeq = 0
/** A unique query tag plus a promise of the 'request-end' of the request that carries it. */
function track (): { tag: string, ended: Promise<DemoRequestEnd> } {
  const tag = `t${++tagSeq}`
  const ended = new Promise<DemoRequestEnd>((resolve) => {
    const on = (e: DemoRequestEnd): void => {
      if (new URL(e.path, 'http://x').searchParams.get('tag') !== tag) return
      up.events.off('request-end', on)
      resolve(e)
    }
    up.events.on('request-end', on)
  })
  return { tag, ended }
}

/** A fresh connection for a request whose fault breaks it. */
async function withFreshClient<T> (fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client(up.url)
  try {
    return await fn(c)
  } finally {
    await c.destroy()
  }
}

const sseEvents = (text: string): string[] => text.split('\n\n').filter((e) => e.trim() !== '')

/** Resolves with an error if `ms` pass with no more data on the stream, rejects on data. */
function expectSilence (body: NodeJS.ReadableStream, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      clearTimeout(timer)
      reject(new Error(`unexpected data after the stall: ${JSON.stringify(chunk.toString())}`))
    }
    const timer = setTimeout(() => {
      body.off('data', onData)
      resolve()
    }, ms)
    body.on('data', onData)
  })
}

describe('demo upstream endpoints', () => {
  test('DEMO_KNOBS lists every knob with a description', () => {
    const names = DEMO_KNOBS.map((k) => k.name)
    for (const n of ['delay-ms', 'chunks', 'interval-ms', 'stall-after', 'reset-after', 'empty-reply', 'malformed', 'status', 'retry-after', 'keep-alive-hint', 'close-idle-after-ms']) {
      assert.ok(names.includes(n as (typeof names)[number]), n)
    }
    for (const k of DEMO_KNOBS) assert.ok(k.description.length > 10)
  })

  test('streaming chat: N chunks, a stop chunk, [DONE], paced by interval-ms', async () => {
    const { tag, ended } = track()
    const t0 = performance.now()
    const res = await client.request({
      method: 'POST',
      path: `/v1/chat/completions?tag=${tag}`,
      headers: { 'content-type': 'application/json', 'x-demo-chunks': '10', 'x-demo-interval-ms': '20' },
      body: JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'hi' }], stream: true }),
    })
    assert.equal(res.statusCode, 200)
    assert.match(String(res.headers['content-type']), /^text\/event-stream/)
    const events = sseEvents(await res.body.text())
    const elapsed = performance.now() - t0
    assert.equal(events.length, 12)
    assert.equal(events.at(-1), 'data: [DONE]')
    const chunks = events.slice(0, -1).map((e) => {
      assert.ok(e.startsWith('data: '))
      return JSON.parse(e.slice(6))
    })
    const text = chunks.slice(0, 10).map((c) => c.choices[0].delta.content).join('')
    assert.equal(text.trim().split(' ').length, 10)
    for (const c of chunks) {
      assert.equal(c.object, 'chat.completion.chunk')
      assert.match(c.id, /^chatcmpl-demo-\d+$/)
      assert.equal(c.model, 'longhaul-demo')
    }
    assert.deepEqual(chunks[10].choices[0], { index: 0, delta: {}, finish_reason: 'stop' })
    assert.ok(elapsed >= 180 && elapsed < 2000, `took ${elapsed} ms`)
    const end = await ended
    assert.equal(end.completed, true)
    assert.equal(end.aborted, false)
    assert.equal(end.method, 'POST')
  })

  test('non-streamed chat: one chat.completion after chunks*interval', async () => {
    const t0 = performance.now()
    const res = await client.request({
      method: 'POST',
      path: '/v1/chat/completions?chunks=5&interval-ms=20',
      body: JSON.stringify({ messages: [{ role: 'user', content: 'tell me a long story' }] }),
    })
    assert.equal(res.statusCode, 200)
    assert.match(String(res.headers['content-type']), /^application\/json/)
    const json = (await res.body.json()) as any
    assert.ok(performance.now() - t0 >= 90)
    assert.equal(json.object, 'chat.completion')
    assert.equal(json.choices[0].message.role, 'assistant')
    assert.equal(json.choices[0].message.content.split(' ').length, 5)
    assert.equal(json.choices[0].finish_reason, 'stop')
    assert.deepEqual(json.usage, { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 })
  })

  test('chat with a body that is not JSON: 400', async () => {
    const res = await client.request({ method: 'POST', path: '/v1/chat/completions', body: '{nope' })
    assert.equal(res.statusCode, 400)
    assert.match(((await res.body.json()) as { error: string }).error, /invalid JSON/)
  })

  test('/health, /headers, unknown path', async () => {
    const health = await client.request({ method: 'GET', path: '/health' })
    assert.equal(health.statusCode, 200)
    assert.deepEqual(await health.body.json(), { status: 'ok' })

    const h = await client.request({ method: 'PATCH', path: '/headers?a=1', headers: { 'x-custom': 'abc' } })
    assert.equal(h.statusCode, 200)
    const json = (await h.body.json()) as { method: string, url: string, headers: Record<string, string> }
    assert.equal(json.method, 'PATCH')
    assert.equal(json.url, '/headers?a=1')
    assert.equal(json.headers['x-custom'], 'abc')

    const missing = await client.request({ method: 'GET', path: '/nope' })
    assert.equal(missing.statusCode, 404)
    assert.ok(((await missing.body.json()) as { error: string }).error)
  })

  test('/echo returns a 1 MiB body byte for byte', async () => {
    const { tag, ended } = track()
    const payload = randomBytes(1024 * 1024)
    const res = await client.request({
      method: 'POST',
      path: `/echo?tag=${tag}`,
      headers: { 'content-type': 'application/x-test' },
      body: payload,
    })
    assert.equal(res.statusCode, 200)
    assert.equal(res.headers['content-type'], 'application/x-test')
    const got = Buffer.from(await res.body.arrayBuffer())
    assert.equal(got.length, payload.length)
    assert.ok(got.equals(payload))
    const end = await ended
    assert.equal(end.bytesIn, payload.length)
    assert.equal(end.bytesOut, payload.length)
  })

  test('/upload counts the body', async () => {
    const { tag, ended } = track()
    const res = await client.request({ method: 'POST', path: `/upload?tag=${tag}`, body: Buffer.alloc(3 * 1024 * 1024 + 7) })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(await res.body.json(), { bytes: 3 * 1024 * 1024 + 7 })
    assert.equal((await ended).bytesIn, 3 * 1024 * 1024 + 7)
  })

  test('/bytes/N: N bytes of the pattern, with or without content-length', async () => {
    const n = 1_000_003
    const res = await client.request({ method: 'GET', path: `/bytes/${n}` })
    assert.equal(res.statusCode, 200)
    assert.equal(res.headers['content-length'], String(n))
    const body = Buffer.from(await res.body.arrayBuffer())
    assert.equal(body.length, n)
    const pattern = 'abcdefghijklmnopqrstuvwxyz0123456789\n'
    assert.equal(body.subarray(0, 74).toString(), pattern + pattern)
    const at = 64 * 1024 + 5 // across a chunk boundary
    assert.equal(body[at], pattern.charCodeAt(at % pattern.length))

    const chunked = await client.request({ method: 'GET', path: '/bytes/100000?chunked=1' })
    assert.equal(chunked.headers['content-length'], undefined)
    assert.equal(chunked.headers['transfer-encoding'], 'chunked')
    assert.equal((await chunked.body.arrayBuffer()).byteLength, 100000)
  })

  test('/sse: chunks tick events, then the end', async () => {
    const res = await client.request({ method: 'GET', path: '/sse?chunks=3&interval-ms=10' })
    assert.equal(res.statusCode, 200)
    assert.match(String(res.headers['content-type']), /^text\/event-stream/)
    const events = sseEvents(await res.body.text())
    assert.deepEqual(events, [1, 2, 3].map((i) => `id: ${i}\nevent: tick\ndata: {"i":${i}}`))
  })
})

describe('demo upstream fault knobs', () => {
  test('delay-ms delays the response headers', async () => {
    const t0 = performance.now()
    const res = await client.request({ method: 'GET', path: '/health', headers: { 'x-demo-delay-ms': '200' } })
    const elapsed = performance.now() - t0
    await res.body.text()
    assert.equal(res.statusCode, 200)
    assert.ok(elapsed >= 190 && elapsed < 2000, `took ${elapsed} ms`)
  })

  test('stall-after=N: N events, then silence with the response still open', async () => {
    const { tag, ended } = track()
    await withFreshClient(async (c) => {
      const ac = new AbortController()
      const res = await c.request({ method: 'GET', path: `/sse?tag=${tag}&chunks=10&interval-ms=10&stall-after=3`, signal: ac.signal })
      let text = ''
      await new Promise<void>((resolve) => {
        const onData = (chunk: Buffer): void => {
          text += chunk.toString()
          if (sseEvents(text).length < 3 || !text.endsWith('\n\n')) return
          res.body.off('data', onData)
          resolve()
        }
        res.body.on('data', onData)
      })
      assert.equal(sseEvents(text).length, 3)
      await expectSilence(res.body, 300)
      assert.equal(up.inflight() >= 1, true)
      res.body.on('error', () => {})
      ac.abort()
    })
    const end = await ended
    assert.equal(end.fault, 'stall')
    assert.equal(end.aborted, true)
    assert.equal(end.completed, false)
  })

  test('stall-after=0: headers, then nothing', async () => {
    const { tag, ended } = track()
    await withFreshClient(async (c) => {
      const ac = new AbortController()
      const res = await c.request({
        method: 'POST',
        path: `/v1/chat/completions?tag=${tag}`,
        headers: { 'x-demo-stall-after': '0', 'x-demo-interval-ms': '5' },
        body: JSON.stringify({ stream: true }),
        signal: ac.signal,
      })
      assert.equal(res.statusCode, 200)
      await expectSilence(res.body, 300)
      res.body.on('error', () => {})
      ac.abort()
    })
    assert.equal((await ended).aborted, true)
  })

  test('reset-after=N: N events, then a connection reset', async () => {
    const { tag, ended } = track()
    await withFreshClient(async (c) => {
      const res = await c.request({ method: 'GET', path: `/sse?tag=${tag}&chunks=10&interval-ms=10&reset-after=3` })
      assert.equal(res.statusCode, 200)
      let text = ''
      const err = await new Promise<Error>((resolve, reject) => {
        res.body.on('data', (chunk: Buffer) => void (text += chunk.toString()))
        res.body.on('error', resolve)
        res.body.on('end', () => reject(new Error('the stream ended cleanly')))
      })
      assert.equal(sseEvents(text).length, 3)
      assert.match(String((err as { code?: string }).code), /ECONNRESET|UND_ERR_SOCKET/)
    })
    const end = await ended
    assert.equal(end.fault, 'reset')
    assert.equal(end.aborted, false)
    assert.equal(end.completed, false)
  })

  test('reset-after=0 and empty-reply=1: an error and no response', async () => {
    for (const knob of ['reset-after=0', 'empty-reply=1']) {
      const { tag, ended } = track()
      await withFreshClient(async (c) => {
        await assert.rejects(c.request({ method: 'GET', path: `/health?tag=${tag}&${knob}&delay-ms=20` }), (err: Error & { code?: string }) => {
          assert.match(String(err.code), /ECONNRESET|UND_ERR_SOCKET/, `${knob}: ${err.code} ${err.message}`)
          return true
        })
      })
      const end = await ended
      assert.equal(end.bytesOut, 0, knob)
      assert.equal(end.fault, knob.split('=')[0] === 'reset-after' ? 'reset' : 'empty-reply')
    }
  })

  test('malformed=1: the client fails to parse the response', async () => {
    await withFreshClient(async (c) => {
      await assert.rejects(c.request({ method: 'GET', path: '/health?malformed=1' }), (err: Error & { code?: string }) => {
        assert.ok(err.name === 'HTTPParserError' || /^HPE_/.test(String(err.code)), `${err.name} ${err.code}`)
        return true
      })
    })
  })

  test('status and retry-after', async () => {
    const res = await client.request({ method: 'GET', path: '/health', headers: { 'x-demo-status': '503', 'x-demo-retry-after': '7' } })
    assert.equal(res.statusCode, 503)
    assert.equal(res.headers['retry-after'], '7')
    await res.body.text()

    const chat = await client.request({ method: 'POST', path: '/v1/chat/completions?status=429', body: '{}' })
    assert.equal(chat.statusCode, 429)
    const json = (await chat.body.json()) as { error: { code: number } }
    assert.equal(json.error.code, 429)
  })

  test('keep-alive-hint sets one Keep-Alive header', async () => {
    const res = await client.request({ method: 'GET', path: '/health?keep-alive-hint=2' })
    assert.equal(res.headers['keep-alive'], 'timeout=2')
    await res.body.text()
  })

  test('close-idle-after-ms: the connection is closed once idle that long', async () => {
    const raw = new RawClient(up.url)
    // A second request within the window keeps the connection (and re-arms the timer).
    await raw.send('GET /health?close-idle-after-ms=150 HTTP/1.1\r\nHost: x\r\n\r\n')
    const first = await raw.response()
    assert.equal(first.status, 200)
    await raw.send('GET /health?close-idle-after-ms=150 HTTP/1.1\r\nHost: x\r\n\r\n')
    const second = await raw.response()
    const t = performance.now()
    assert.equal(second.status, 200)
    // Then a gap longer than the window: the server closes before a third request can be sent,
    // well before its announced keep-alive (5 s).
    await raw.closed
    const closedAt = raw.closedAt
    assert.ok(closedAt - t >= 100 && closedAt - t < 2000, `closed after ${closedAt - t} ms`)
  })

  test('an invalid knob value gives 400', async () => {
    for (const [path, headers, error] of [
      ['/health', { 'x-demo-delay-ms': '-5' }, 'invalid x-demo-delay-ms: -5'],
      ['/sse?chunks=1.5', {}, 'invalid x-demo-chunks: 1.5'],
      ['/health?status=abc', {}, 'invalid x-demo-status: abc'],
    ] as const) {
      const res = await client.request({ method: 'GET', path, headers })
      assert.equal(res.statusCode, 400, path)
      assert.deepEqual(await res.body.json(), { error })
    }
  })

  test("'request-end' reports aborted=true within 100 ms of the client leaving mid-stream", async () => {
    const { tag, ended } = track()
    const raw = new RawClient(up.url)
    const body = JSON.stringify({ stream: true })
    await raw.send(
      `POST /v1/chat/completions?tag=${tag}&chunks=1000&interval-ms=10 HTTP/1.1\r\nHost: x\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    )
    // Wait for the first token (past the response headers), then leave.
    await raw.waitFor(/chat\.completion\.chunk/)
    const leftAt = performance.now()
    raw.socket.destroy()
    const end = await ended
    assert.equal(end.aborted, true)
    assert.equal(end.completed, false)
    assert.ok(end.endedAt - leftAt < 100, `request-end ${end.endedAt - leftAt} ms after the client left`)
    assert.ok(end.bytesOut > 0)
    assert.equal(up.inflight(), 0)
  })

  test('a request that ends clears the timers it started', async () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
    const baseline = timers()
    const a = track()
    const b = track()
    const started = new Promise<void>((resolve) => {
      let n = 0
      const on = (): void => {
        if (++n < 2) return
        up.events.off('request', on)
        resolve()
      }
      up.events.on('request', on)
    })
    const ac = new AbortController()
    await withFreshClient((c1) => withFreshClient(async (c2) => {
      const pending = [
        c1.request({ method: 'GET', path: `/health?tag=${a.tag}&delay-ms=60000`, signal: ac.signal }),
        c2.request({ method: 'GET', path: `/sse?tag=${b.tag}&interval-ms=60000`, signal: ac.signal }).then((r) => r.body.text()),
      ].map((p) => p.catch((err: Error) => err))
      await started
      // Both reach their timer (a delay, an interval) a few ticks after their 'request' event.
      for (let i = 0; i < 1000 && timers() < baseline + 2; i++) await new Promise((resolve) => setImmediate(resolve))
      assert.equal(timers(), baseline + 2)
      ac.abort()
      await Promise.all(pending)
    }))
    assert.equal((await a.ended).aborted, true)
    assert.equal((await b.ended).aborted, true)
    assert.equal(timers(), baseline)
  })
})
