// The first-event gate (routes[].sse.holdHeaders): the response headers of an event stream are
// held until its first answer event, so a failure before it (an in-band error record, a reset, a
// firstEvent cut) is retried on another endpoint as the retry policy allows, or answered with a
// status and its outcome instead of a cut 200. When the hold runs out, the headers go out and
// heartbeats keep outer proxies from cutting the wait.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import { runCli, startGateway, writeConfig, type RunningGateway } from './helpers/gateway.ts'
import { startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { assertAccess, assertGatewayError, rawExchange, sseRecords } from './helpers/faults.ts'
import { metric } from './helpers/resilience.ts'
import { openaiChatStream, openaiClient } from './helpers/sdk.ts'

let good: DemoUpstream
let overloaded: DemoUpstream
let overloaded2: DemoUpstream
let resets: DemoUpstream
let slow: DemoUpstream
let gw: RunningGateway

const RETRY = 'retry: { attempts: 2, on: [reset-before-response, error-event, first-event-timeout], nonIdempotent: true, backoff: { base: 1ms, max: 5ms } }'

before(async () => {
  ;[good, overloaded, overloaded2, resets, slow] = await Promise.all([
    startDemoUpstream(),
    startDemoUpstream({ knobs: { 'error-event': 'overloaded_error' } }),
    startDemoUpstream({ knobs: { 'error-event': 'overloaded_error' } }),
    startDemoUpstream({ knobs: { 'reset-after-headers': '1' } }),
    startDemoUpstream({ knobs: { 'first-event-after-ms': '5000' } })
  ])
  const route = (name: string, upstream: string, extra: string): string => `
  - name: ${name}
    match: { pathPrefix: /${name}/ }
    upstream: ${upstream}
    rewrite: { stripPrefix: /${name} }
${extra}`
  // Round-robin, faulty endpoint first, outlier ejection off: a route's first request meets the fault.
  const pair = (a: DemoUpstream, b: DemoUpstream): string => `{ endpoints: [${a.url}, ${b.url}], balance: round-robin, outlier: { consecutiveFailures: 1000 } }`
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams:
  overloaded: ${pair(overloaded, good)}
  sdk: ${pair(overloaded, good)}
  resets: ${pair(resets, good)}
  slow: ${pair(slow, good)}
  down: ${pair(overloaded, overloaded2)}
  one: { endpoints: [${slow.url}] }
  plain: { endpoints: [${good.url}] }
routes:
${route('overloaded', 'overloaded', `    sse: { holdHeaders: 5s }\n    ${RETRY}`)}
${route('sdk', 'sdk', `    sse: { holdHeaders: 5s }\n    ${RETRY}`)}
${route('resets', 'resets', `    sse: { holdHeaders: 5s }\n    ${RETRY}`)}
${route('slow', 'slow', `    sse: { holdHeaders: 5s }\n    timeouts: { firstEvent: 500ms }\n    ${RETRY}`)}
${route('down', 'down', `    sse: { holdHeaders: 5s }\n    ${RETRY}`)}
${route('cut', 'one', '    sse: { holdHeaders: 5s }\n    timeouts: { firstEvent: 500ms }')}
${route('held', 'one', '    sse: { holdHeaders: 5s }\n    timeouts: { firstEvent: 5s }')}
${route('brief', 'plain', '    sse: { holdHeaders: 300ms, heartbeat: 200ms }\n    timeouts: { firstEvent: 5s, streamIdle: 1s }')}
`)
})

after(async () => {
  await gw?.stop()
  await Promise.all([good, overloaded, overloaded2, resets, slow].map((u) => u?.close()))
})

const CHAT = JSON.stringify({ model: 'x', messages: [], stream: true })

/** POST a chat stream over a raw socket: a cut shows as one. */
async function chat (path: string, knobs = ''): Promise<{ id: string, res: Awaited<ReturnType<typeof rawExchange>> }> {
  const id = randomUUID()
  const res = await rawExchange(gw.url, `POST ${path} HTTP/1.1\r\nhost: t\r\nx-request-id: ${id}\r\n${knobs}content-type: application/json\r\ncontent-length: ${CHAT.length}\r\nconnection: close\r\n\r\n${CHAT}`)
  return { id, res }
}

/** Round-robin sends a route's first request to the faulty endpoint: retried, the client sees one clean 200. */
async function oneCleanAnswer (route: string, reason: string): Promise<void> {
  const before = await metric(gw, 'longhaul_retries_total', { route, reason })
  const { id, res } = await chat(`/${route}/v1/chat/completions`, 'x-demo-chunks: 3\r\nx-demo-interval-ms: 1\r\n')
  assert.equal(res.status, 200, res.body.toString())
  assert.ok(res.complete, 'a clean end')
  const records = sseRecords(res.body.toString())
  assert.equal(records.at(-1)?.data, '[DONE]')
  assert.equal(records.length, 5, res.body.toString())
  assert.ok(records.every((r) => !/error|thinking/.test(r.data + r.event)), res.body.toString())
  const line = await gw.accessLine(id)
  assertAccess(line, { outcome: 'ok', status: 200 })
  assert.equal(line.attempts, 2)
  assert.equal(await metric(gw, 'longhaul_retries_total', { route, reason }) - before, 1)
}

describe('sse.holdHeaders', { concurrency: true }, () => {
  test('an overloaded_error record before the first event is retried on the other endpoint', async () => {
    await oneCleanAnswer('overloaded', 'error_event')
  })

  test('a reset after the headers, before the first event, is retried on the other endpoint', async () => {
    await oneCleanAnswer('resets', 'reset_before_response')
  })

  test('a firstEvent cut while the headers are held is retried on the other endpoint', async () => {
    await oneCleanAnswer('slow', 'first_event_timeout')
  })

  test('the openai SDK reads one clean stream through the gate, its first endpoint overloaded', async () => {
    const sdk = openaiClient(`${gw.url}/sdk`, { headers: { 'x-demo-chunks': '3', 'x-demo-interval-ms': '1' } })
    const result = await openaiChatStream(sdk)
    assert.equal(result.error, undefined)
    assert.equal(result.text.split(' ').filter(Boolean).length, 3)
    assert.equal(sdk.attempts.length, 1)
    assert.equal(await metric(gw, 'longhaul_retries_total', { route: 'sdk', reason: 'error_event' }), 1, 'the gateway retried, not the SDK')
  })

  test('no endpoint answers: 503 upstream_error_event, after both tries', async () => {
    const { id, res } = await chat('/down/v1/chat/completions')
    assertGatewayError({ status: res.status, headers: res.headers, body: res.body.toString() }, { outcome: 'upstream_error_event', status: 503, proxyStatus: 'destination_unavailable', route: 'down' })
    assert.match(res.body.toString(), /overloaded_error/)
    const line = await gw.accessLine(id)
    assertAccess(line, { outcome: 'upstream_error_event', status: 503 })
    assert.equal(line.attempts, 2)
  })

  test('no retry: a firstEvent cut is a 504 first_event_timeout, not a cut 200', async () => {
    const { id, res } = await chat('/cut/v1/chat/completions')
    assertGatewayError({ status: res.status, headers: res.headers, body: res.body.toString() }, { outcome: 'first_event_timeout', status: 504, proxyStatus: 'http_response_timeout', limitMs: 500, route: 'cut' })
    assertAccess(await gw.accessLine(id), { outcome: 'first_event_timeout', status: 504, limitMs: 500 })
  })

  test('a client that leaves while the headers are held is logged 499 client_aborted: no status was sent', async () => {
    const id = randomUUID()
    const controller = new AbortController()
    // The 'one' upstream's first event comes after 5 s: the gate holds the headers meanwhile.
    const pending = request(`${gw.url}/held/sse`, { headers: { 'x-request-id': id }, signal: controller.signal })
    const settled = pending.then(() => 'answered', () => 'aborted')
    // The upstream's headers are in (the live view shows the request's firstEvent clock running).
    const live = await request(`${gw.adminUrl}/live`)
    let buffered = ''
    for await (const chunk of live.body) {
      buffered += chunk.toString()
      const snapshots = [...buffered.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!) as { inflight?: Array<{ id: string, clocks: Array<{ limit: string }> }> })
      if (snapshots.some((snap) => snap.inflight?.some((r) => r.id === id && r.clocks.some((c) => c.limit === 'firstEvent')))) break
    }
    live.body.destroy()
    controller.abort()
    assert.equal(await settled, 'aborted')
    assertAccess(await gw.accessLine(id), { outcome: 'client_aborted', status: 499 })
    assert.equal((await gw.accessLine(id)).bytesOut, 0)
  })

  test('the hold runs out: the headers go out, then heartbeats until the first event, then the stream', async () => {
    const t0 = performance.now()
    const res = await request(`${gw.url}/brief/sse`, { headers: { 'x-demo-first-event-after-ms': '1300', 'x-demo-chunks': '2', 'x-demo-interval-ms': '1' } })
    const headersAfter = performance.now() - t0
    assert.equal(res.statusCode, 200)
    assert.ok(headersAfter >= 280 && headersAfter < 900, `headers after ${headersAfter} ms`)
    const text = await res.body.text()
    // Silence after the headers is bridged by heartbeats (200ms) although streamIdle (1s) is not running.
    assert.ok(text.startsWith(': keepalive\n\n'), JSON.stringify(text))
    assert.equal(sseRecords(text).filter((r) => r.event === 'tick').length, 2)
  })
})

test('retry.on error-event or first-event-timeout without sse.holdHeaders is an error: nothing could be retried', async () => {
  const { path } = await writeConfig(`upstreams:
  u: { endpoints: [http://127.0.0.1:9] }
routes:
  - name: a
    upstream: u
    retry: { on: [connect-failure, error-event] }
`)
  const r = await runCli(['check', '--config', path])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /routes\[0\]\.retry\.on\[1\]: retry\.on error-event needs sse\.holdHeaders/)
})
