// The SDK's deadline is the client's wait for the response headers. The official OpenAI and
// Anthropic SDKs send their own timeout (X-Stainless-Timeout, in seconds) and the attempt number
// (X-Stainless-Retry-Count). Their timers stop when the headers arrive, so the gateway bounds only
// that wait with the first (client_deadline_exceeded) and never cuts a stream the SDK still reads;
// x-longhaul-timeout-ms, when there too, wins. It logs the second and counts the retries.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import { prefixRoute, type RunningGateway } from './helpers/gateway.ts'
import { arrivalOf, requestEndOf, type DemoUpstream } from './helpers/upstreams.ts'
import { startOverDemo, stopOverDemo } from './helpers/over-demo.ts'
import { assertAccess, assertGatewayError } from './helpers/faults.ts'
import { metric } from './helpers/resilience.ts'
import { anthropicClient, anthropicMessagesStream, openaiClient, OpenAI, Anthropic } from './helpers/sdk.ts'

let demo: DemoUpstream
let gw: RunningGateway

before(async () => {
  ({ demo, gw } = await startOverDemo(() => `
routes:
${prefixRoute('slow', '    timeouts: { request: 10s, maxClientTimeout: 20s }')}
  - name: llm
    match: { pathPrefix: /v1/ }
    upstream: demo
    timeouts: { request: 10s }
`))
})

after(() => stopOverDemo({ gw, demo }))

async function get (path: string, headers: Record<string, string>, id = randomUUID()): Promise<{ id: string, status: number, headers: Record<string, string | string[] | undefined>, body: string }> {
  const res = await request(`${gw.url}${path}`, { headers: { 'x-request-id': id, ...headers } })
  return { id, status: res.statusCode, headers: res.headers, body: await res.body.text() }
}

describe('X-Stainless-Timeout and X-Stainless-Retry-Count', { concurrency: true }, () => {
  test('X-Stainless-Timeout: 1 and no headers within 1 s: client_deadline_exceeded; the upstream sees the route\'s budget', async () => {
    const id = randomUUID()
    const upstreamEnd = requestEndOf(demo, id)
    const res = await get('/slow/headers', { 'x-stainless-timeout': '1', 'x-demo-delay-ms': '3000' }, id)
    const seen = await upstreamEnd
    assertGatewayError(res, { outcome: 'client_deadline_exceeded', status: 504, proxyStatus: 'http_response_timeout', limitMs: 1000, route: 'slow' })
    // The budget sent upstream bounds the whole response: the route's request, not the SDK's wait.
    const budget = Number(seen.headers['x-longhaul-timeout-ms'])
    assert.ok(budget > 9000 && budget <= 10_000, `upstream budget ${budget}`)
    assert.equal(seen.headers['x-stainless-timeout'], '1', 'the SDK header itself goes upstream unchanged')
    assertAccess(await gw.accessLine(res.id), { outcome: 'client_deadline_exceeded', status: 504, limitMs: 1000 })
  })

  test('X-Stainless-Timeout: 1 and a stream that starts at once and lasts 2 s: served whole', async () => {
    const id = randomUUID()
    const res = await get('/slow/sse', { 'x-stainless-timeout': '1', 'x-demo-chunks': '5', 'x-demo-interval-ms': '500' }, id)
    assert.equal(res.status, 200)
    assert.equal(res.body.match(/^data: /gm)?.length, 5, res.body)
    const line = await gw.accessLine(id)
    assertAccess(line, { outcome: 'ok', status: 200 })
    assert.ok(Number(line.durationMs) >= 2000, `durationMs ${String(line.durationMs)}`)
  })

  test('x-longhaul-timeout-ms: 0, a budget already spent: 504 at once, nothing sent upstream', async () => {
    const id = randomUUID()
    // A pooled connection to the upstream is idle: a request dispatched would be written at once.
    assert.equal((await get('/slow/headers', {})).status, 200)
    // Listening before the request: an arrival, however fast, would be seen.
    const arrived = arrivalOf(demo, id, 1000).then(() => true, () => false)
    const res = await get('/slow/headers', { 'x-longhaul-timeout-ms': '0' }, id)
    assertGatewayError(res, { outcome: 'client_deadline_exceeded', status: 504, proxyStatus: 'http_response_timeout', limitMs: 0 })
    assert.equal(await arrived, false, 'the upstream received the request')
  })

  test('x-longhaul-timeout-ms wins over X-Stainless-Timeout, even when it is longer', async () => {
    const res = await get('/slow/headers', { 'x-stainless-timeout': '1', 'x-longhaul-timeout-ms': '1600', 'x-demo-delay-ms': '3000' })
    assertGatewayError(res, { outcome: 'client_deadline_exceeded', status: 504, proxyStatus: 'http_response_timeout', limitMs: 1600 })
  })

  test('an SDK timeout longer than request does not lengthen it (x-longhaul-timeout-ms may, up to maxClientTimeout)', async () => {
    // 600 s (the SDKs' default) against request 10s, maxClientTimeout 20s: the budget sent upstream stays the route's.
    const res = await get('/slow/headers', { 'x-stainless-timeout': '600' })
    assert.equal(res.status, 200)
    const upstream = JSON.parse(res.body) as { headers: Record<string, string> }
    const budget = Number(upstream.headers['x-longhaul-timeout-ms'])
    assert.ok(budget > 9000 && budget <= 10_000, `upstream budget ${budget}`)
  })

  test('a malformed X-Stainless-Timeout is bad_request; 0 (a sub-second SDK timeout, truncated) is no budget', async () => {
    const bad = await get('/slow/headers', { 'x-stainless-timeout': 'soon' })
    assertGatewayError(bad, { outcome: 'bad_request', status: 400, proxyStatus: 'http_request_error' })
    assert.match(bad.body, /X-Stainless-Timeout must be a number of seconds/)
    const zero = await get('/slow/headers', { 'x-stainless-timeout': '0' })
    assert.equal(zero.status, 200)
    const fractional = await get('/slow/headers', { 'x-stainless-timeout': '1.5', 'x-demo-delay-ms': '3000' })
    assertGatewayError(fractional, { outcome: 'client_deadline_exceeded', status: 504, proxyStatus: 'http_response_timeout', limitMs: 1500 })
  })

  test('X-Stainless-Retry-Count is logged; a retried request is counted', async () => {
    const before = await metric(gw, 'longhaul_client_retries_total', { route: 'slow' })
    const first = await get('/slow/headers', { 'x-stainless-retry-count': '0' })
    const retry = await get('/slow/headers', { 'x-stainless-retry-count': '2' })
    assert.equal((await gw.accessLine(first.id)).clientRetryCount, 0)
    assert.equal((await gw.accessLine(retry.id)).clientRetryCount, 2)
    assert.equal((await gw.accessLine((await get('/slow/headers', {})).id)).clientRetryCount, undefined)
    assert.equal(await metric(gw, 'longhaul_client_retries_total', { route: 'slow' }) - before, 1)
  })
})

describe('the real SDKs', { concurrency: true }, () => {
  test('anthropic: a stream that outlasts the SDK\'s timeout is not cut (the SDK\'s own timer stops at the headers)', async () => {
    const id = randomUUID()
    const sdk = anthropicClient(gw.url, { timeoutMs: 1500, headers: { 'x-request-id': id, 'x-demo-chunks': '6', 'x-demo-interval-ms': '400' } })
    const result = await anthropicMessagesStream(sdk)
    assert.equal(result.error, undefined, String(result.error))
    assert.ok(result.text.length > 0)
    assert.equal(sdk.attempts[0]!.headers.get('x-stainless-timeout'), '1')
    const line = await gw.accessLine(id)
    assertAccess(line, { outcome: 'ok', status: 200 })
    assert.ok(Number(line.durationMs) >= 2000, `durationMs ${String(line.durationMs)}`)
  })

  test('openai: a request timeout shorter than the route\'s limit ends as client_deadline_exceeded, attempted once', async () => {
    const id = randomUUID()
    const sdk = openaiClient(gw.url, { headers: { 'x-request-id': id, 'x-demo-delay-ms': '4000' } })
    // openai-node sends X-Stainless-Timeout for a per-request timeout (not for the client's default).
    const error = await sdk.client.chat.completions.create({ model: 'x', messages: [], stream: true }, { timeout: 1500 }).then(() => null, (err: unknown) => err)
    assert.ok(error instanceof OpenAI.APIError, String(error))
    assert.equal(error.status, 504)
    assert.equal(error.code, 'client_deadline_exceeded')
    assert.equal(sdk.attempts.length, 1)
    assert.equal(sdk.attempts[0]!.headers.get('x-stainless-timeout'), '1')
    assertAccess(await gw.accessLine(id), { outcome: 'client_deadline_exceeded', status: 504, limitMs: 1000 })
  })

  test('anthropic: the same (x-should-retry: false keeps the SDK from trying again)', async () => {
    const id = randomUUID()
    const sdk = anthropicClient(gw.url, { timeoutMs: 1500, headers: { 'x-request-id': id, 'x-demo-delay-ms': '4000' } })
    const result = await anthropicMessagesStream(sdk)
    assert.ok(result.error instanceof Anthropic.APIError, String(result.error))
    assert.equal(result.error.status, 504)
    assert.equal(sdk.attempts.length, 1)
    assertAccess(await gw.accessLine(id), { outcome: 'client_deadline_exceeded', status: 504, limitMs: 1000 })
  })
})
