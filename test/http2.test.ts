// HTTP/2 downstream end to end (issue 6): node:http2 clients over TLS (ALPN h2, a certificate
// made at test time) and over h2c (prior knowledge), against the real gateway and the demo
// upstream. Each timeout outcome holds per stream; a cut after headers is an SSE error record
// then RST_STREAM INTERNAL_ERROR, never a clean end; a client's RST_STREAM aborts the upstream;
// drain sends GOAWAY and lets open streams finish; idle sessions close; floods are bounded.
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import { connect as tlsConnect } from 'node:tls'
import { randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { startGateway, runCli, writeConfig, prefixRoute, type RunningGateway } from './helpers/gateway.ts'
import { requestEndOf, startBlackhole, startDemoUpstream, type Blackhole, type DemoUpstream } from './helpers/upstreams.ts'
import { assertAccess, assertElapsed, sseRecords, LATE_MS, errorRecordData } from './helpers/faults.ts'
import { makeTestCertificate, type TestCertificate } from './helpers/tls.ts'
import { h2Connect, h2Request, type H2Answer } from './helpers/h2.ts'

const { NGHTTP2_INTERNAL_ERROR, NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants

let demo: DemoUpstream
let blackhole: Blackhole
let cert: TestCertificate
let gw: RunningGateway
let tlsUrl: string
let h2cUrl: string
let tls: http2.ClientHttp2Session
let h2c: http2.ClientHttp2Session

const route = prefixRoute

before(async () => {
  demo = await startDemoUpstream()
  blackhole = await startBlackhole()
  cert = makeTestCertificate()
  gw = await startGateway(`
listen:
  - address: 127.0.0.1:0
    tls: { cert: ${cert.certPath}, key: ${cert.keyPath} }
  - address: 127.0.0.1:0
    protocol: h2c
admin: { address: 127.0.0.1:0 }
downstream:
  headersTimeout: 300ms
  bodyIdleTimeout: 300ms
  sendTimeout: 500ms
upstreams:
  demo: { endpoints: [${demo.url}] }
  blackhole: { endpoints: [${blackhole.url}], connectTimeout: 300ms }
routes:
${route('first-byte', '    timeouts: { firstByte: 300ms }')}
${route('idle', '    timeouts: { streamIdle: 300ms }')}
${route('total', '    timeouts: { request: 500ms }')}
${route('client', '    timeouts: { firstByte: 2s }')}
${route('connect', '', 'blackhole')}
${route('long', '    timeouts: { request: none, firstByte: 5s, streamIdle: 2s }')}
${route('any', '')}
`)
  tlsUrl = `https://${gw.addresses[0]!}`
  h2cUrl = `http://${gw.addresses[1]!}`
  tls = await h2Connect(tlsUrl, cert.cert)
  h2c = await h2Connect(h2cUrl)
})

after(async () => {
  tls?.destroy()
  h2c?.destroy()
  await gw?.stop()
  await demo?.close()
  blackhole?.close()
  cert?.remove()
})

function ticks (from: number, to: number): string {
  let text = ''
  for (let i = from; i <= to; i++) text += `id: ${i}\nevent: tick\ndata: {"i":${i}}\n\n`
  return text
}

function id (name: string): string {
  return `${name}-${randomUUID()}`
}

/** A gateway-made error over HTTP/2: status, x-longhaul-error, the JSON document, a clean end. */
function assertH2Error (res: H2Answer, outcome: string, status: number, limitMs?: number): Record<string, unknown> {
  const ctx = JSON.stringify(res)
  assert.equal(res.status, status, ctx)
  assert.equal(res.headers['x-longhaul-error'], outcome, ctx)
  assert.equal(res.headers['content-type'], 'application/json', ctx)
  assert.equal(res.headers.connection, undefined, 'HTTP/2 has no Connection header')
  assert.equal(res.ended, true, ctx)
  const doc = (JSON.parse(res.body) as { error: Record<string, unknown> }).error
  assert.equal(doc.code, outcome)
  if (limitMs !== undefined) {
    assert.equal(doc.limitMs, limitMs)
    assertElapsed(doc.elapsedMs, limitMs, outcome)
  }
  return doc
}

describe('HTTP/2 downstream', { concurrency: true }, () => {
  test('a long stream over TLS (ALPN h2): 30 events over 15 s arrive byte for byte and end cleanly', async () => {
    const rid = id('long')
    assert.equal(tls.alpnProtocol, 'h2')
    const ended = requestEndOf(demo, rid, 30_000)
    const res = await h2Request(tls, '/long/sse?chunks=30&interval-ms=500', { headers: { 'x-request-id': rid } })
    assert.equal(res.status, 200)
    assert.equal(res.headers['content-type'], 'text/event-stream')
    assert.equal(res.headers['x-accel-buffering'], 'no')
    assert.equal(res.ended, true)
    assert.equal(res.rstCode, null)
    assert.equal(res.body, ticks(1, 30))
    // streamed, not buffered: the events arrived spread over the 15 s
    assert.ok(res.chunks.length >= 25, `${res.chunks.length} data frames`)
    assert.ok(res.chunks.at(-1)!.at - res.chunks[0]!.at >= 13_000)
    const line = await gw.accessLine(rid)
    assertAccess(line, { outcome: 'ok', status: 200 })
    assert.equal(line.protocol, 'HTTP/2.0')
    assert.equal(line.bytesOut, Buffer.byteLength(ticks(1, 30)))
    assert.equal((await ended).completed, true)
  })

  test('HTTP/1.1 on the same TLS port (ALPN http/1.1), with X-Forwarded-Proto https', async () => {
    const agent = new Agent({ allowH2: false, connect: { ca: cert.cert } })
    try {
      const res = await request(`${tlsUrl}/any/headers`, { dispatcher: agent })
      assert.equal(res.statusCode, 200)
      const seen = (await res.body.json() as { headers: Record<string, string> }).headers
      assert.equal(seen['x-forwarded-proto'], 'https')
      const line = await gw.waitForLine((l) => l.msg === 'access' && l.path === '/any/headers' && l.protocol === 'HTTP/1.1')
      assertAccess(line, { outcome: 'ok', status: 200 })
    } finally {
      await agent.close()
    }
  })

  test('the HTTP/1.1 side of the TLS port keeps its head limit: a request head that stops arriving → 408 request_headers_timeout', async () => {
    const { hostname, port } = new URL(tlsUrl)
    const socket = tlsConnect({ host: hostname, port: Number(port), ca: cert.cert, ALPNProtocols: ['http/1.1'] })
    socket.on('error', () => {})
    await new Promise((resolve) => socket.once('secureConnect', resolve))
    assert.equal(socket.alpnProtocol, 'http/1.1')
    socket.write('GET /any/headers HTTP/1.1\r\nHost: gateway.test\r\nx-partial: ')
    let raw = ''
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => { raw += d })
    await new Promise((resolve) => socket.once('close', resolve))
    assert.match(raw, /^HTTP\/1\.1 408 /)
    assert.match(raw, /\r\nx-longhaul-error: request_headers_timeout\r\n/)
    assert.match(raw, /"limitMs":300/)
  })

  test('an HTTP/2 request reaches the upstream as HTTP/1.1: Host from :authority, cookies joined, no pseudo-headers, the body streamed', async () => {
    const res = await h2Request(h2c, '/any/headers', { headers: { cookie: 'a=1', 'x-test': 'yes' } })
    // a second cookie field, as HTTP/2 clients split them (RFC 9113 §8.2.3)
    assert.equal(res.status, 200)
    const seen = (JSON.parse(res.body) as { headers: Record<string, string> }).headers
    assert.equal(seen.host, gw.addresses[1])
    assert.equal(seen['x-forwarded-proto'], 'http')
    assert.equal(seen['x-test'], 'yes')
    assert.equal(seen.cookie, 'a=1')
    for (const name of Object.keys(seen)) assert.ok(!name.startsWith(':'), name)
    const split = await new Promise<Record<string, string>>((resolve) => {
      const stream = h2c.request({ ':path': '/any/headers', cookie: ['a=1', 'b=2'] })
      let body = ''
      stream.setEncoding('utf8')
      stream.on('data', (d: string) => { body += d })
      stream.on('end', () => resolve((JSON.parse(body) as { headers: Record<string, string> }).headers))
    })
    assert.equal(split.cookie, 'a=1; b=2')
    // a body without content-length (HTTP/2 frames it) goes upstream whole
    const payload = 'x'.repeat(200_000)
    const echo = await h2Request(h2c, '/any/echo', { body: payload, headers: { 'content-type': 'text/plain' } })
    assert.equal(echo.status, 200)
    assert.equal(echo.body, payload)
  })

  test('100 concurrent streams on one session all complete, concurrently', async () => {
    const session = await h2Connect(tlsUrl, cert.cert)
    try {
      const startedAt = performance.now()
      const answers = await Promise.all(Array.from({ length: 100 }, (_, i) =>
        h2Request(session, `/any/sse?chunks=10&interval-ms=100&n=${i}`, { headers: { 'x-request-id': `c100-${i}-${randomUUID()}` } })))
      const tookMs = performance.now() - startedAt
      for (const a of answers) {
        assert.equal(a.status, 200)
        assert.equal(a.ended, true)
        assert.equal(a.body, ticks(1, 10))
      }
      // 100 one-second streams, one after the other, would take 100 s
      assert.ok(tookMs < 10_000, `took ${Math.round(tookMs)} ms`)
    } finally {
      session.close()
    }
  })

  describe('every limit, per stream (h2c)', { concurrency: 1 }, () => {
    test('first_byte_timeout → 504 on the stream; the upstream is aborted; the session lives on', async () => {
      const rid = id('fb')
      const ended = requestEndOf(demo, rid)
      const res = await h2Request(h2c, '/first-byte/headers', { headers: { 'x-request-id': rid, 'x-demo-delay-ms': '2000' } })
      assertH2Error(res, 'first_byte_timeout', 504, 300)
      const line = await gw.accessLine(rid)
      assertAccess(line, { outcome: 'first_byte_timeout', status: 504, limitMs: 300 })
      assert.equal(line.protocol, 'HTTP/2.0')
      assert.equal((await ended).aborted, true)
      assert.equal(h2c.closed, false)
    })

    test('stream_idle_timeout after headers: the events, the SSE error record, then RST_STREAM INTERNAL_ERROR (never a clean end)', async () => {
      const rid = id('idle')
      const ended = requestEndOf(demo, rid)
      const res = await h2Request(h2c, '/idle/sse?chunks=10&interval-ms=20&stall-after=2', { headers: { 'x-request-id': rid } })
      assert.equal(res.status, 200)
      assert.equal(res.ended, false, 'the cut stream ended cleanly')
      assert.equal(res.rstCode, NGHTTP2_INTERNAL_ERROR)
      const records = sseRecords(res.body)
      assert.deepEqual(records.map((r) => r.event), ['tick', 'tick', 'error'])
      assert.ok(res.body.endsWith('\n\n'))
      const data = errorRecordData(records[2]!)
      assert.equal(data.code, 'stream_idle_timeout')
      assert.equal(data.requestId, rid)
      assertElapsed(data.elapsedMs, 300, 'stream_idle_timeout', LATE_MS + 40)
      assertAccess(await gw.accessLine(rid), { outcome: 'stream_idle_timeout', status: 200, limitMs: 300 })
      assert.equal((await ended).aborted, true)
    })

    test('stream_idle_timeout on a plain body: RST_STREAM INTERNAL_ERROR without a record', async () => {
      const rid = id('idle-bytes')
      const res = await h2Request(h2c, '/idle/bytes/1000000?chunked=1&stall-after=2', { headers: { 'x-request-id': rid } })
      assert.equal(res.status, 200)
      assert.equal(res.ended, false)
      assert.equal(res.rstCode, NGHTTP2_INTERNAL_ERROR)
      assert.equal(Buffer.byteLength(res.body), 2 * 65536)
      assertAccess(await gw.accessLine(rid), { outcome: 'stream_idle_timeout', status: 200, limitMs: 300 })
    })

    test('request_timeout cuts a busy stream after `request`: error record, then the reset', async () => {
      const rid = id('total')
      const res = await h2Request(h2c, '/total/sse?chunks=100&interval-ms=100', { headers: { 'x-request-id': rid } })
      assert.equal(res.rstCode, NGHTTP2_INTERNAL_ERROR)
      const last = sseRecords(res.body).at(-1)!
      assert.equal(last.event, 'error')
      assert.equal(errorRecordData(last).code, 'request_timeout')
      assertAccess(await gw.accessLine(rid), { outcome: 'request_timeout', status: 200, limitMs: 500 })
    })

    test('client_deadline_exceeded: the client\'s x-longhaul-timeout-ms, per stream', async () => {
      const rid = id('client')
      const res = await h2Request(h2c, '/client/headers', { headers: { 'x-request-id': rid, 'x-demo-delay-ms': '2000', 'x-longhaul-timeout-ms': '300' } })
      assertH2Error(res, 'client_deadline_exceeded', 504, 300)
      assertAccess(await gw.accessLine(rid), { outcome: 'client_deadline_exceeded', status: 504, limitMs: 300 })
    })

    test('connect_timeout → 503 on the stream', async () => {
      const rid = id('connect')
      const res = await h2Request(h2c, '/connect/health', { headers: { 'x-request-id': rid } })
      assert.equal(res.status, 503)
      assert.equal(res.headers['x-longhaul-error'], 'connect_timeout')
      assertAccess(await gw.accessLine(rid, 10_000), { outcome: 'connect_timeout', status: 503, limitMs: 300 })
    })

    test('request_body_timeout: a request body that goes silent → 408, upstream aborted', async () => {
      const rid = id('body')
      const ended = requestEndOf(demo, rid)
      const stream = h2c.request({ ':method': 'POST', ':path': '/any/upload', 'x-request-id': rid, 'content-type': 'application/octet-stream' })
      stream.write('0123456789') // and then nothing, the stream left open
      const res = await new Promise<{ status: number, headers: http2.IncomingHttpHeaders, body: string }>((resolve) => {
        let headers: http2.IncomingHttpHeaders = {}
        let body = ''
        stream.on('response', (h) => { headers = h })
        stream.setEncoding('utf8')
        stream.on('data', (d: string) => { body += d })
        stream.on('error', () => {})
        stream.on('close', () => resolve({ status: Number(headers[':status']), headers, body }))
      })
      assert.equal(res.status, 408)
      assert.equal(res.headers['x-longhaul-error'], 'request_body_timeout')
      assert.equal(res.headers.connection, undefined)
      const line = await gw.accessLine(rid)
      assertAccess(line, { outcome: 'request_body_timeout', status: 408, limitMs: 300 })
      assert.equal(line.bytesIn, 10)
      assert.equal((await ended).aborted, true)
      assert.equal(h2c.closed, false, 'one stream\'s limit closed the session')
    })

    test('client_send_timeout: a stream whose client stops reading is reset after sendTimeout (flow control, not buffering)', async () => {
      const rid = id('send')
      const ended = requestEndOf(demo, rid, 10_000)
      const session = await h2Connect(h2cUrl)
      try {
        const stream = session.request({ ':path': '/any/bytes/67108864', 'x-request-id': rid })
        stream.on('error', () => {})
        const closed = new Promise((resolve) => stream.once('close', resolve))
        await new Promise((resolve) => stream.once('response', resolve))
        stream.pause() // HTTP/2 flow control: the window is not re-opened, the gateway's writes block
        const line = await gw.accessLine(rid, 10_000)
        assertAccess(line, { outcome: 'client_send_timeout', status: 200, limitMs: 500 })
        // held back, not buffered: far less than the 64 MiB went out
        assert.ok((line.bytesOut as number) < 8 * 1024 * 1024, `bytesOut ${String(line.bytesOut)}`)
        stream.resume()
        await closed
        assert.equal(stream.rstCode, NGHTTP2_INTERNAL_ERROR)
        assert.equal((await ended).aborted, true)
      } finally {
        session.destroy()
      }
    })

    test('a client\'s RST_STREAM aborts the upstream request at once (client_aborted); the session goes on', async () => {
      const rid = id('rst')
      const ended = requestEndOf(demo, rid)
      let resetAt = 0
      const res = await h2Request(h2c, '/any/sse?chunks=100&interval-ms=50', {
        headers: { 'x-request-id': rid },
        onData: (stream) => {
          if (resetAt !== 0) return
          resetAt = performance.now()
          stream.close(NGHTTP2_CANCEL)
        }
      })
      assert.equal(res.rstCode, NGHTTP2_CANCEL)
      const end = await ended
      assert.equal(end.aborted, true)
      assert.ok(end.endedAt - resetAt < 200, `the upstream request ended ${Math.round(end.endedAt - resetAt)} ms after the reset`)
      const line = await gw.accessLine(rid)
      assertAccess(line, { outcome: 'client_aborted', status: 200 })
      assert.equal(line.clientIp, '127.0.0.1', 'read while the stream was open')
      const after = await h2Request(h2c, '/any/health')
      assert.equal(after.status, 200)
    })

    test('upstream_reset after headers: RST_STREAM INTERNAL_ERROR after the error record', async () => {
      const rid = id('reset')
      const res = await h2Request(h2c, '/any/sse?chunks=10&interval-ms=20&reset-after=2', { headers: { 'x-request-id': rid } })
      assert.equal(res.rstCode, NGHTTP2_INTERNAL_ERROR)
      assert.deepEqual(sseRecords(res.body).map((r) => r.event), ['tick', 'tick', 'error'])
      assertAccess(await gw.accessLine(rid), { outcome: 'upstream_reset', status: 200 })
    })
  })
})

describe('HTTP/2 sessions and drain', () => {
  test('a rapid-reset flood closes that session; a well-behaved session on the same listener is served', async () => {
    const flood = await h2Connect(h2cUrl)
    const good = await h2Connect(h2cUrl)
    try {
      const goaway = new Promise<number>((resolve) => flood.once('goaway', (code: number) => resolve(code)))
      flood.on('error', () => {})
      const closed = new Promise((resolve) => flood.once('close', resolve))
      // open and reset streams as fast as the client can: far above 1000 at once, 33 a second
      for (let sent = 0; sent < 5000 && !flood.closed && !flood.destroyed; sent++) {
        const s = flood.request({ ':path': '/any/health' })
        s.on('error', () => {})
        s.close(NGHTTP2_CANCEL)
        if (sent % 200 === 199) await new Promise((resolve) => setImmediate(resolve))
      }
      const code = await Promise.race([goaway, closed.then(() => -1)])
      // nghttp2 ends a session over its own reset budget with GOAWAY INTERNAL_ERROR; the
      // gateway-wide budget (downstream.resetFlood, 1000 too) with ENHANCE_YOUR_CALM: either may
      // act first (test/hostile-h2.test.ts tests the gateway-wide one).
      assert.ok(code === NGHTTP2_INTERNAL_ERROR || code === NGHTTP2_ENHANCE_YOUR_CALM, `GOAWAY code ${code}`)
      await closed
      const answers = await Promise.all(Array.from({ length: 10 }, () => h2Request(good, '/any/health')))
      for (const a of answers) assert.equal(a.status, 200)
    } finally {
      flood.destroy()
      good.destroy()
    }
  })

  test('downstream.idleTimeout closes a session with no open stream (GOAWAY), never one with a quiet stream', async () => {
    const local = await startDemoUpstream()
    const g = await startGateway(`
listen: [{ address: 127.0.0.1:0, protocol: h2c }]
admin: { address: 127.0.0.1:0 }
downstream: { idleTimeout: 800ms }
upstreams:
  demo: { endpoints: [${local.url}] }
routes:
  - name: all
    upstream: demo
`)
    try {
      const url = `http://${g.addresses[0]!}`
      const idle = await h2Connect(url)
      const idleGoaway = new Promise<number>((resolve) => idle.once('goaway', (code: number) => resolve(performance.now())))
      assert.equal((await h2Request(idle, '/health')).status, 200)
      const lastStreamAt = performance.now()
      const closedAt = await idleGoaway
      assert.ok(closedAt - lastStreamAt >= 700 && closedAt - lastStreamAt < 2000, `GOAWAY ${Math.round(closedAt - lastStreamAt)} ms after the last stream`)

      // a stream silent for 2 s (longer than idleTimeout) keeps its session
      const busy = await h2Connect(url)
      let busyGoaway = false
      busy.once('goaway', () => { busyGoaway = true })
      const res = await h2Request(busy, '/sse?chunks=2&interval-ms=10&pause-after=1&pause-ms=2000')
      assert.equal(res.ended, true)
      assert.equal(res.body, ticks(1, 2))
      assert.equal(busyGoaway, false)
      busy.destroy()
    } finally {
      await g.stop()
      await local.close()
    }
  })

  test('drain: GOAWAY goes out as soon as the gateway stops accepting; open streams finish; new streams are refused', async () => {
    const local = await startDemoUpstream()
    const c = makeTestCertificate()
    const g = await startGateway(`
listen: [{ address: 127.0.0.1:0, tls: { cert: ${c.certPath}, key: ${c.keyPath} } }]
admin: { address: 127.0.0.1:0 }
upstreams:
  demo: { endpoints: [${local.url}] }
routes:
  - name: all
    upstream: demo
drain: { delay: 0s, timeout: 10s }
`)
    try {
      const session = await h2Connect(`https://${g.addresses[0]!}`, c.cert)
      const goaway = new Promise<number>((resolve) => session.once('goaway', () => resolve(performance.now())))
      // two 1.5 s streams in flight, past their first event
      const firstData: Array<Promise<void>> = []
      const open = [0, 1].map((i) => {
        let seen: () => void = () => {}
        firstData.push(new Promise((resolve) => { seen = resolve }))
        return h2Request(session, `/sse?chunks=15&interval-ms=100&n=${i}`, { onData: () => seen() })
      })
      await Promise.all(firstData)
      const signalAt = performance.now()
      const exited = g.stop('SIGTERM', 15_000)
      const goawayAt = await goaway
      assert.ok(goawayAt - signalAt < 1000, `GOAWAY ${Math.round(goawayAt - signalAt)} ms after SIGTERM`)
      // a new stream after GOAWAY is not served on this session
      const refused = await new Promise<string>((resolve) => {
        try {
          const s = session.request({ ':path': '/health' })
          s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'))
          s.on('response', () => resolve('served'))
        } catch (err) {
          resolve((err as NodeJS.ErrnoException).code ?? 'thrown')
        }
      })
      assert.notEqual(refused, 'served')
      for (const a of await Promise.all(open)) {
        assert.equal(a.status, 200)
        assert.equal(a.ended, true, 'an open stream was cut by the drain')
        assert.equal(a.body, ticks(1, 15))
      }
      assert.equal(await exited, 0)
      const finished = g.lines.filter((l) => l.msg === 'access' && l.outcome === 'ok' && l.protocol === 'HTTP/2.0')
      assert.equal(finished.length, 2)
      session.destroy()
    } finally {
      await g.stop()
      await local.close()
      c.remove()
    }
  })
})

describe('HTTP/2 config', () => {
  test('tls paths are relative to the config file; a missing file and tls with h2c are errors at their keys', async () => {
    const c = makeTestCertificate()
    try {
      const base = `
admin: { address: 127.0.0.1:0 }
upstreams:
  demo: { endpoints: [http://127.0.0.1:1] }
routes:
  - name: all
    upstream: demo
`
      // the config next to the certificate, naming it by a relative path
      const good = join(c.dir, 'longhaul.yaml')
      writeFileSync(good, `listen:\n  - address: 127.0.0.1:0\n    tls: { cert: cert.pem, key: key.pem }\n${base}`)
      const ok = await runCli(['check', '--config', good])
      assert.equal(ok.code, 0, ok.stderr)

      const missing = await writeConfig(`listen:\n  - address: 127.0.0.1:0\n    tls: { cert: nowhere.pem, key: ${c.keyPath} }\n${base}`)
      const bad = await runCli(['check', '--config', missing.path])
      assert.equal(bad.code, 1)
      assert.match(bad.stderr, /longhaul\.yaml:3:\d+ listen\[0\]\.tls\.cert: cannot read .*nowhere\.pem: file not found/)

      const both = await writeConfig(`listen:\n  - address: 127.0.0.1:0\n    tls: { cert: ${c.certPath}, key: ${c.keyPath} }\n    protocol: h2c\n${base}`)
      const conflict = await runCli(['check', '--config', both.path])
      assert.equal(conflict.code, 1)
      assert.match(conflict.stderr, /longhaul\.yaml:4:5 listen\[0\]\.protocol: protocol h2c is cleartext HTTP\/2/)

      const mismatched = makeTestCertificate()
      try {
        const pair = await writeConfig(`listen:\n  - address: 127.0.0.1:0\n    tls: { cert: ${c.certPath}, key: ${mismatched.keyPath} }\n${base}`)
        const wrong = await runCli(['check', '--config', pair.path])
        assert.equal(wrong.code, 1)
        assert.match(wrong.stderr, /listen\[0\]\.tls: the certificate and key cannot be used together/)
      } finally {
        mismatched.remove()
      }
    } finally {
      c.remove()
    }
  })
})
