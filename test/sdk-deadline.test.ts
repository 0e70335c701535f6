// The SDK's deadline is the client's deadline. The official OpenAI and Anthropic SDKs send their
// own timeout on every request (X-Stainless-Timeout, in seconds) and the attempt number
// (X-Stainless-Retry-Count). The gateway takes the first like x-longhaul-timeout-ms (same cap,
// client_deadline_exceeded, the budget left sent upstream) unless x-longhaul-timeout-ms is also
// there, which wins; it logs the second and counts the requests that are retries.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import { prefixRoute, type RunningGateway } from './helpers/gateway.ts'
import { requestEndOf, type DemoUpstream } from './helpers/upstreams.ts'
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
  test('X-Stainless-Timeout: 1 gives client_deadline_exceeded after ~1 s, and the upstream sees the budget', async () => {
    const id = randomUUID()
    const upstreamEnd = requestEndOf(demo, id)
    const res = await get('/slow/headers', { 'x-stainless-timeout': '1', 'x-demo-delay-ms': '3000' }, id)
    const seen = await upstreamEnd
    assertGatewayError(res, { outcome: 'client_deadline_exceeded', status: 504, proxyStatus: 'http_response_timeout', limitMs: 1000, route: 'slow' })
    const budget = Number(seen.headers['x-longhaul-timeout-ms'])
    assert.ok(budget > 900 && budget <= 1000, `upstream budget ${budget}`)
    assert.equal(seen.headers['x-stainless-timeout'], '1', 'the SDK header itself goes upstream unchanged')
    assertAccess(await gw.accessLine(res.id), { outcome: 'client_deadline_exceeded', status: 504, limitMs: 1000 })
  })

  test('x-longhaul-timeout-ms wins over X-Stainless-Timeout, even when it is longer', async () => {
    const res = await get('/slow/headers', { 'x-stainless-timeout': '1', 'x-longhaul-timeout-ms': '1600', 'x-demo-delay-ms': '3000' })
    assertGatewayError(res, { outcome: 'client_deadline_exceeded', status: 504, proxyStatus: 'http_response_timeout', limitMs: 1600 })
  })

  test('an SDK timeout over maxClientTimeout is capped by the route: the budget sent upstream is the cap', async () => {
    // 600 s (the SDKs' default) over maxClientTimeout 20s: the route's cap binds; a fast answer is untouched.
    const res = await get('/slow/headers', { 'x-stainless-timeout': '600' })
    assert.equal(res.status, 200)
    const upstream = JSON.parse(res.body) as { headers: Record<string, string> }
    const budget = Number(upstream.headers['x-longhaul-timeout-ms'])
    assert.ok(budget > 19_000 && budget <= 20_000, `upstream budget ${budget}`)
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
