// The outcome vocabulary end to end (DESIGN.md §4, SCENARIOS.md 3): every outcome that is not a
// route time limit (those are in timeouts.test.ts), provoked through the real gateway, and the
// catalogue itself checked against the contract and the README, like fastify's errors test.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import { startGateway, ROOT, type RunningGateway } from './helpers/gateway.ts'
import { closedPort, requestEndOf, startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { assertAccess, assertGatewayError, holdingClient, rawExchange, sseRecords, errorRecordData } from './helpers/faults.ts'
import { OUTCOMES, OUTCOME_NAMES, describe as describeOutcome, type Outcome } from '../src/gateway/outcome.ts'

let demo: DemoUpstream
let gw: RunningGateway
let closedUrl: string

before(async () => {
  demo = await startDemoUpstream()
  closedUrl = `http://127.0.0.1:${await closedPort()}`
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
downstream:
  sendTimeout: 500ms
  maxBodySize: 1KiB
upstreams:
  demo: { endpoints: [${demo.url}] }
  closed: { endpoints: [${closedUrl}] }
routes:
  - name: demo
    match: { pathPrefix: /demo/ }
    upstream: demo
    rewrite: { stripPrefix: /demo }
  - name: closed
    match: { pathPrefix: /closed/ }
    upstream: closed
    rewrite: { stripPrefix: /closed }
`)
})

after(async () => {
  await gw?.stop()
  await demo?.close()
})

interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: string }

async function send (path: string, options: { method?: 'GET' | 'POST', headers?: Record<string, string>, body?: string } = {}): Promise<Answer> {
  const res = await request(`${gw.url}${path}`, { method: options.method ?? 'GET', headers: options.headers ?? {}, body: options.body ?? null })
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
}

/** A chat completion with demo fault knobs: POST, so no retry of any kind may hide the fault. */
function chat (requestId: string, knobs: Record<string, string>, stream = false): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-request-id': requestId }
  for (const [name, value] of Object.entries(knobs)) headers[`x-demo-${name}`] = value
  return send('/demo/v1/chat/completions', { method: 'POST', headers, body: JSON.stringify({ stream, messages: [{ role: 'user', content: 'hello' }] }) })
}

function newId (name: string): string {
  return `${name}-${randomUUID()}`
}

/** Resolves when the demo upstream receives the request with this x-request-id. */
function upstreamRequest (id: string): Promise<void> {
  return new Promise((resolve) => {
    const onRequest = (e: { headers: Record<string, unknown> }): void => {
      if (e.headers['x-request-id'] !== id) return
      demo.events.off('request', onRequest)
      resolve()
    }
    demo.events.on('request', onRequest)
  })
}

/** Collects the demo's 'request' events whose x-request-id is one of `ids`: the upstream was contacted. */
function contacts (ids: string[]): { seen: string[], stop: () => void } {
  const seen: string[] = []
  const listener = (e: { headers: Record<string, unknown> }): void => {
    const id = e.headers['x-request-id']
    if (typeof id === 'string' && ids.includes(id)) seen.push(id)
  }
  demo.events.on('request', listener)
  return { seen, stop: () => demo.events.off('request', listener) }
}

test('ok: the access line of a clean exchange (status, bytes, firstByteMs ≥ the upstream\'s delay)', async () => {
  const id = newId('ok')
  const res = await send('/demo/headers', { headers: { 'x-request-id': id, 'x-demo-delay-ms': '200' } })
  assert.equal(res.status, 200)
  assert.equal(res.headers['x-longhaul-error'], undefined)
  assert.equal(res.headers['proxy-status'], undefined)
  const line = await gw.accessLine(id)
  assertAccess(line, { outcome: 'ok', status: 200 })
  assert.equal(line.route, 'demo')
  assert.equal(line.upstream, 'demo')
  assert.equal(line.endpoint, demo.url)
  assert.equal(line.attempts, 1)
  assert.equal(line.bytesIn, 0)
  assert.equal(line.bytesOut, Buffer.byteLength(res.body))
  assert.ok((line.firstByteMs as number) >= 200, JSON.stringify(line))
  assert.ok((line.durationMs as number) >= (line.firstByteMs as number), JSON.stringify(line))

  const echoId = newId('ok-echo')
  const payload = 'x'.repeat(700)
  const echo = await send('/demo/echo', { method: 'POST', headers: { 'x-request-id': echoId, 'content-type': 'text/plain' }, body: payload })
  assert.equal(echo.body, payload)
  const echoLine = await gw.accessLine(echoId)
  assertAccess(echoLine, { outcome: 'ok', status: 200 })
  assert.equal(echoLine.bytesIn, 700)
  assert.equal(echoLine.bytesOut, 700)
})

test('upstream_unavailable: connection refused → 503 destination_unavailable', async () => {
  const id = newId('unavailable')
  const res = await send('/closed/health', { headers: { 'x-request-id': id } })
  assertGatewayError(res, { outcome: 'upstream_unavailable', status: 503, proxyStatus: 'destination_unavailable', route: 'closed', upstream: 'closed', requestId: id })
  const line = await gw.accessLine(id)
  assertAccess(line, { outcome: 'upstream_unavailable', status: 503 })
  assert.equal(line.endpoint, closedUrl)
  assert.ok((line.attempts as number) >= 1)
})

test('upstream_reset before headers: a TCP reset → 502 connection_terminated', async () => {
  const id = newId('reset-0')
  const ended = requestEndOf(demo, id)
  const res = await chat(id, { 'reset-after': '0' })
  assertGatewayError(res, { outcome: 'upstream_reset', status: 502, proxyStatus: 'connection_terminated', route: 'demo', requestId: id })
  assertAccess(await gw.accessLine(id), { outcome: 'upstream_reset', status: 502 })
  const end = await ended
  assert.equal(end.fault, 'reset')
  assert.equal(end.aborted, false) // the upstream ended it, the gateway had nothing to abort
})

test('upstream_reset for an empty reply: answered 502 at once, never a hang (SCENARIOS 3)', async () => {
  const id = newId('empty')
  const startedAt = performance.now()
  const res = await chat(id, { 'empty-reply': '1' })
  const tookMs = performance.now() - startedAt
  assertGatewayError(res, { outcome: 'upstream_reset', status: 502, proxyStatus: 'connection_terminated', requestId: id })
  assert.ok(tookMs < 1000, `the empty reply took ${tookMs} ms to answer`)
  assertAccess(await gw.accessLine(id), { outcome: 'upstream_reset', status: 502 })
})

test('upstream_reset after headers: the SSE error record, then a cut; logged with the status sent', async () => {
  const id = newId('reset-3')
  const ended = requestEndOf(demo, id)
  const body = JSON.stringify({ stream: true, messages: [{ role: 'user', content: 'hello' }] })
  const res = await rawExchange(gw.url,
    'POST /demo/v1/chat/completions HTTP/1.1\r\nHost: gateway.test\r\nContent-Type: application/json\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\nx-request-id: ${id}\r\nx-demo-reset-after: 3\r\nx-demo-interval-ms: 10\r\nConnection: close\r\n\r\n${body}`)
  assert.equal(res.status, 200)
  assert.equal(res.complete, false, 'a cut must not look like a complete answer')
  const text = res.body.toString()
  const records = sseRecords(text)
  assert.deepEqual(records.map((r) => r.event), ['message', 'message', 'message', 'error'], text)
  assert.ok(text.endsWith('\n\n'), 'nothing may follow the error record')
  assert.doesNotMatch(text, /\[DONE\]/)
  const data = errorRecordData(records[3]!)
  assert.equal(data.code, 'upstream_reset')
  assert.equal(data.requestId, id)
  assert.equal(data.limitMs, undefined)
  assertAccess(await gw.accessLine(id), { outcome: 'upstream_reset', status: 200 })
  assert.equal((await ended).fault, 'reset')
})

test('upstream_protocol_error: an unparsable response → 502 http_protocol_error', async () => {
  const id = newId('malformed')
  const ended = requestEndOf(demo, id)
  const res = await chat(id, { malformed: '1' })
  assertGatewayError(res, { outcome: 'upstream_protocol_error', status: 502, proxyStatus: 'http_protocol_error', route: 'demo', requestId: id })
  assertAccess(await gw.accessLine(id), { outcome: 'upstream_protocol_error', status: 502 })
  assert.equal((await ended).fault, 'malformed')
})

test('no_route: 404 destination_not_found', async () => {
  const id = newId('no-route')
  const res = await send('/nowhere', { headers: { 'x-request-id': id } })
  assertGatewayError(res, { outcome: 'no_route', status: 404, proxyStatus: 'destination_not_found', route: null, upstream: null, requestId: id })
  const line = await gw.accessLine(id)
  assertAccess(line, { outcome: 'no_route', status: 404 })
  assert.equal(line.attempts, 0)
})

test('bad_request: an absolute-form target is refused and never forwarded, even to a configured upstream', async () => {
  const id = newId('absolute')
  const watch = contacts([id])
  const res = await rawExchange(gw.url, `GET ${demo.url}/demo/headers HTTP/1.1\r\nHost: 127.0.0.1:${demo.port}\r\nx-request-id: ${id}\r\nConnection: close\r\n\r\n`)
  const doc = assertGatewayError({ status: res.status, headers: res.headers, body: res.body.toString() }, { outcome: 'bad_request', status: 400, proxyStatus: 'http_request_error', requestId: id })
  assert.match(String(doc.message), /origin-form/)
  const line = await gw.accessLine(id)
  assertAccess(line, { outcome: 'bad_request', status: 400 })
  assert.equal(line.attempts, 0)
  watch.stop()
  assert.deepEqual(watch.seen, [])
})

test('payload_too_large: a content-length over maxBodySize → 413 before the upstream is contacted', async () => {
  const id = newId('too-large')
  const watch = contacts([id])
  const res = await rawExchange(gw.url,
    `POST /demo/upload HTTP/1.1\r\nHost: gateway.test\r\nx-request-id: ${id}\r\nContent-Type: application/octet-stream\r\nContent-Length: 2048\r\n\r\n${'x'.repeat(2048)}`)
  assert.equal(res.headers.connection, 'close')
  const doc = assertGatewayError({ status: res.status, headers: res.headers, body: res.body.toString() }, { outcome: 'payload_too_large', status: 413, proxyStatus: 'http_request_error', route: 'demo', requestId: id })
  assert.match(String(doc.message), /downstream\.maxBodySize/)
  const line = await gw.accessLine(id)
  assertAccess(line, { outcome: 'payload_too_large', status: 413 })
  assert.equal(line.attempts, 0)
  watch.stop()
  assert.deepEqual(watch.seen, [])
})

test('payload_too_large: a chunked body that grows over maxBodySize → 413, and the upstream request is aborted', async () => {
  const id = newId('too-large-chunked')
  const ended = requestEndOf(demo, id)
  const chunk = 'y'.repeat(600)
  // the second chunk only once the upstream request exists, so that there is one to abort
  const res = await rawExchange(gw.url, [
    `POST /demo/upload HTTP/1.1\r\nHost: gateway.test\r\nx-request-id: ${id}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n${chunk}\r\n`,
    () => upstreamRequest(id),
    `258\r\n${chunk}\r\n0\r\n\r\n`
  ])
  assertGatewayError({ status: res.status, headers: res.headers, body: res.body.toString() }, { outcome: 'payload_too_large', status: 413, proxyStatus: 'http_request_error', requestId: id })
  assertAccess(await gw.accessLine(id), { outcome: 'payload_too_large', status: 413 })
  const end = await ended
  assert.equal(end.aborted, true)
  assert.ok(end.bytesIn <= 1024, `the upstream received ${end.bytesIn} bytes`)
})

test('client_send_timeout: a client that stops reading is cut after sendTimeout, and the body was never buffered', async () => {
  const id = newId('send')
  const size = 200 * 1024 * 1024
  const ended = requestEndOf(demo, id, 15_000)
  const client = holdingClient(gw.url, `GET /demo/bytes/${size} HTTP/1.1\r\nHost: gateway.test\r\nx-request-id: ${id}\r\n\r\n`)
  const head = await client.head
  assert.equal(head.status, 200)
  assert.equal(head.headers['content-length'], String(size))
  const line = await gw.accessLine(id, 15_000)
  assertAccess(line, { outcome: 'client_send_timeout', status: 200, limitMs: 500 })
  assert.ok((line.durationMs as number) >= 500, JSON.stringify(line))
  // kernel buffers and one chunk in flight, not the 200 MiB body
  assert.ok((line.bytesOut as number) < 32 * 1024 * 1024, `the gateway took ${line.bytesOut} bytes from the upstream`)
  const end = await ended
  assert.equal(end.aborted, true)
  assert.ok(end.bytesOut < 48 * 1024 * 1024, `the upstream wrote ${end.bytesOut} bytes`)
  // reading on, the client finds the response cut short of its content-length
  client.socket.resume()
  await client.closed
  assert.ok(client.received() < size, `the client received ${client.received()} bytes`)
})

test('client_aborted: a client that leaves aborts the upstream request; 499 before headers, the status sent after', async () => {
  const before = newId('abort-before')
  const beforeEnded = requestEndOf(demo, before)
  const waiting = holdingClient(gw.url, `GET /demo/headers HTTP/1.1\r\nHost: gateway.test\r\nx-request-id: ${before}\r\nx-demo-delay-ms: 5000\r\n\r\n`)
  void waiting.head.catch(() => {})
  // leave once the upstream has the request
  await upstreamRequest(before)
  waiting.socket.destroy()
  const beforeLine = await gw.accessLine(before)
  assertAccess(beforeLine, { outcome: 'client_aborted', status: 499 })
  assert.equal((await beforeEnded).aborted, true)
  assert.ok((beforeLine.durationMs as number) < 5000)

  const after = newId('abort-after')
  const afterEnded = requestEndOf(demo, after)
  const streaming = holdingClient(gw.url, `GET /demo/sse?chunks=100&interval-ms=20 HTTP/1.1\r\nHost: gateway.test\r\nx-request-id: ${after}\r\n\r\n`)
  assert.equal((await streaming.head).status, 200)
  streaming.socket.destroy()
  assertAccess(await gw.accessLine(after), { outcome: 'client_aborted', status: 200 })
  assert.equal((await afterEnded).aborted, true)
})

// ── The catalogue (fastify's errors test): the table in outcome.ts is the contract of DESIGN §4.

/** DESIGN.md §4: the status of each outcome when the gateway makes the response (499, and 503 for a refused HTTP/2 stream: logged only). */
const CONTRACT_STATUS: Record<Outcome, number> = {
  ok: 200,
  no_route: 404,
  bad_request: 400,
  request_headers_timeout: 408,
  request_body_timeout: 408,
  payload_too_large: 413,
  client_aborted: 499,
  client_send_timeout: 499,
  too_many_streams: 503,
  overloaded: 503,
  upstream_unavailable: 503,
  connect_timeout: 503,
  first_byte_timeout: 504,
  stream_idle_timeout: 504,
  first_event_timeout: 504,
  upstream_error_event: 503,
  request_timeout: 504,
  client_deadline_exceeded: 504,
  upstream_reset: 502,
  upstream_protocol_error: 502,
  draining: 503,
  drain_timeout: 503,
  tunnel_idle_timeout: 504,
  internal_error: 500
}

/** The limit each outcome's message must name, so a reader knows which knob to turn. */
const LIMIT_KEYS: Partial<Record<Outcome, string>> = {
  request_headers_timeout: 'downstream.headersTimeout',
  request_body_timeout: 'downstream.bodyIdleTimeout',
  payload_too_large: 'downstream.maxBodySize',
  client_send_timeout: 'downstream.sendTimeout',
  connect_timeout: 'connectTimeout',
  first_byte_timeout: 'firstByte',
  stream_idle_timeout: 'streamIdle',
  first_event_timeout: 'firstEvent',
  request_timeout: 'request timeout',
  client_deadline_exceeded: 'x-longhaul-timeout-ms',
  drain_timeout: 'drain.timeout',
  tunnel_idle_timeout: 'tunnelIdle'
}

/** RFC 9209 §2.3 error types. */
const RFC9209_TYPES = new Set([
  'dns_timeout', 'dns_error', 'destination_not_found', 'destination_unavailable', 'destination_ip_prohibited',
  'destination_ip_unroutable', 'connection_refused', 'connection_terminated', 'connection_timeout',
  'connection_read_timeout', 'connection_write_timeout', 'connection_limit_reached', 'tls_protocol_error',
  'tls_certificate_error', 'tls_alert_received', 'http_request_error', 'http_request_denied',
  'http_response_incomplete', 'http_response_header_section_size', 'http_response_header_size',
  'http_response_body_size', 'http_response_trailer_section_size', 'http_response_trailer_size',
  'http_response_transfer_coding', 'http_response_content_coding', 'http_response_timeout',
  'http_upgrade_failed', 'http_protocol_error', 'proxy_internal_response', 'proxy_internal_error',
  'proxy_configuration_error', 'proxy_loop_detected'
])

test('catalogue: every outcome has the contract status, an RFC 9209 Proxy-Status type or null, and a message naming its limit', () => {
  assert.deepEqual([...OUTCOME_NAMES].sort(), Object.keys(CONTRACT_STATUS).sort(), 'outcome.ts and DESIGN §4 list different outcomes')
  for (const name of OUTCOME_NAMES) {
    const spec = OUTCOMES[name]
    assert.match(name, /^[a-z][a-z_]*$/)
    assert.equal(spec.status, CONTRACT_STATUS[name], `${name}: status`)
    const type: string | null = spec.proxyStatus
    if (type !== null) assert.ok(RFC9209_TYPES.has(type), `${name}: '${type}' is not an RFC 9209 error type`)
    // a gateway-made error response always says what happened; only ok, the client-side endings
    // and a refused HTTP/2 stream (RST_STREAM, no response) make none
    assert.equal(type === null, ['ok', 'client_aborted', 'client_send_timeout', 'too_many_streams'].includes(name), `${name}: Proxy-Status type ${type}`)
    const message = describeOutcome({ outcome: name, limitMs: 1500 })
    assert.ok(message.length > 0 && !message.includes('{limit}'), `${name}: ${message}`)
    const key = LIMIT_KEYS[name]
    if (key === undefined) {
      assert.ok(!spec.message.includes('{limit}'), `${name} shows a limit value but no limit key is expected`)
      continue
    }
    assert.ok(message.includes(key), `${name}: '${message}' does not name ${key}`)
    // a time limit shows its value; the body size limit is given in the detail instead
    if (name !== 'payload_too_large') assert.ok(message.includes('1500ms'), `${name}: '${message}' does not show the limit's value`)
  }
  // Retry hints: never repeat what already spent the upstream's time; retry soon what can succeed.
  const hints = Object.fromEntries(OUTCOME_NAMES.flatMap((name) => 'retry' in OUTCOMES[name] ? [[name, OUTCOMES[name].retry]] : []))
  assert.deepEqual(hints, {
    overloaded: 'later',
    upstream_unavailable: 'later',
    first_byte_timeout: 'never',
    first_event_timeout: 'never',
    upstream_error_event: 'later',
    request_timeout: 'never',
    client_deadline_exceeded: 'never',
    draining: 'later'
  })
  assert.ok('connectionClose' in OUTCOMES.draining && OUTCOMES.draining.connectionClose, 'draining answers with Connection: close')
})

test('catalogue: README.md\'s outcome table lists exactly the outcomes of outcome.ts', (t) => {
  const readme = join(ROOT, 'README.md')
  if (!existsSync(readme)) {
    t.skip('README.md does not exist yet')
    return
  }
  const lines = readFileSync(readme, 'utf8').split('\n')
  // the table whose first column is headed "outcome"; its rows start with the name as a code span
  const header = lines.findIndex((line) => /^\|\s*outcome\s*\|/i.test(line))
  assert.notEqual(header, -1, 'README.md has no outcome table (a table whose first column is "outcome")')
  const documented: string[] = []
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break
    documented.push(/^\|\s*`?([A-Za-z_]+)`?\s*\|/.exec(line)?.[1] ?? line)
  }
  for (const name of OUTCOME_NAMES) assert.ok(documented.includes(name), `README.md's outcome table lacks ${name}`)
  // Each row states the retry hint its responses carry.
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break
    const name = /^\|\s*`?([A-Za-z_]+)`?\s*\|/.exec(line)?.[1] as keyof typeof OUTCOMES | undefined
    if (name === undefined || !(name in OUTCOMES)) continue
    const retry = 'retry' in OUTCOMES[name] ? OUTCOMES[name].retry : undefined
    assert.equal(line.includes('`x-should-retry: false`'), retry === 'never', `README.md, ${name}: x-should-retry: false`)
    assert.equal(line.includes('`Retry-After: 1`, `x-should-retry: true`'), retry === 'later', `README.md, ${name}: Retry-After and x-should-retry: true`)
  }
  // outcome names are public and never retired silently: the README lists nothing else
  assert.deepEqual(documented.filter((name) => !(OUTCOME_NAMES as string[]).includes(name)), [], 'README.md lists outcomes that outcome.ts does not have')
})
