// The official SDKs through the gateway, as their users write it: openai's chat completions stream
// and @anthropic-ai/sdk's Messages stream, each to the demo upstream's endpoint in its dialect.
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { prefixRoute, type RunningGateway } from './helpers/gateway.ts'
import type { DemoUpstream } from './helpers/upstreams.ts'
import { startOverDemo, stopOverDemo } from './helpers/over-demo.ts'
import { Anthropic, anthropicClient, anthropicMessagesStream, OpenAI, openaiChatStream, openaiClient, type StreamResult } from './helpers/sdk.ts'

let demo: DemoUpstream
let gw: RunningGateway

before(async () => {
  ({ demo, gw } = await startOverDemo((demoUrl) => `
  busy:
    endpoints: [${demoUrl}]
    limits: { maxConcurrent: 1, maxQueued: 0 }
routes:
${prefixRoute('fb', '    timeouts: { firstByte: 500ms }')}
${prefixRoute('busy', '', 'busy')}
  - name: llm
    match: { pathPrefix: /v1/, methods: [POST] }
    upstream: demo
    timeouts: { firstByte: 2s, streamIdle: 600ms, request: 30s }
`))
})

after(() => stopOverDemo({ gw, demo }))

// 5 tokens, 10 ms apart: the demo's words, in order.
const FIVE_TOKENS = 'Long requests need patience: the '
const fast = { 'x-demo-chunks': '5', 'x-demo-interval-ms': '10' }

describe('a healthy stream ends cleanly in the SDK\'s loop', () => {
  test('openai: chat.completions.create({ stream: true })', async () => {
    const requestId = randomUUID()
    const sdk = openaiClient(gw.url, { headers: { ...fast, 'x-request-id': requestId } })
    const result = await openaiChatStream(sdk)
    assert.equal(result.error, undefined)
    assert.equal(result.text, FIVE_TOKENS)
    assert.equal(result.chunks, 6) // 5 tokens and the finish chunk
    assert.equal(sdk.attempts.length, 1)
    const line = await gw.accessLine(requestId)
    assert.equal(line.outcome, 'ok')
    assert.equal(line.path, '/v1/chat/completions')
  })

  test('@anthropic-ai/sdk: messages.create({ stream: true })', async () => {
    const requestId = randomUUID()
    const sdk = anthropicClient(gw.url, { headers: { ...fast, 'x-request-id': requestId } })
    const result = await anthropicMessagesStream(sdk)
    assert.equal(result.error, undefined)
    assert.equal(result.text, FIVE_TOKENS)
    // message_start, content_block_start, 5 deltas, content_block_stop, message_delta, message_stop
    assert.equal(result.chunks, 10)
    assert.equal(sdk.attempts.length, 1)
    const line = await gw.accessLine(requestId)
    assert.equal(line.outcome, 'ok')
    assert.equal(line.path, '/v1/messages')
  })

  test('@anthropic-ai/sdk: a whole (non-streamed) message', async () => {
    const sdk = anthropicClient(gw.url, { headers: fast })
    const message = await sdk.client.messages.create({ model: 'longhaul-demo', max_tokens: 64, messages: [{ role: 'user', content: 'hello there' }] })
    assert.deepEqual(message.content, [{ type: 'text', text: FIVE_TOKENS.trimEnd() }])
    assert.equal(message.stop_reason, 'end_turn')
    assert.deepEqual(message.usage, { input_tokens: 2, output_tokens: 5 })
  })
})

/** What each SDK's loop raised: its own API error, naming the outcome and the limit. */
function assertOpenaiCut (result: StreamResult, outcome: string, message: RegExp): void {
  assert.ok(result.error instanceof OpenAI.APIError, `expected an APIError, got ${String(result.error)}`)
  assert.equal(result.error.code, outcome)
  assert.match(result.error.message, message)
}

function assertAnthropicCut (result: StreamResult, outcome: string, message: RegExp): void {
  assert.ok(result.error instanceof Anthropic.APIError, `expected an APIError, got ${String(result.error)}`)
  assert.equal(result.error.type, outcome)
  assert.match(result.error.message, message)
}

// The three ways a stream is cut after its headers; each SDK's loop must raise, never end cleanly.
const CUTS: Array<{ name: string, headers: Record<string, string>, outcome: string, message: RegExp }> = [
  { name: 'a stall (streamIdle)', headers: { 'x-demo-stall-after': '2' }, outcome: 'stream_idle_timeout', message: /silent longer than streamIdle \(600ms\)/ },
  { name: 'an upstream reset mid-stream', headers: { 'x-demo-reset-after': '2' }, outcome: 'upstream_reset', message: /the upstream closed or reset the connection/ },
  { name: 'the client\'s deadline mid-stream', headers: { 'x-longhaul-timeout-ms': '400', 'x-demo-interval-ms': '50' }, outcome: 'client_deadline_exceeded', message: /own deadline \(400ms, its x-longhaul-timeout-ms or its SDK.s X-Stainless-Timeout\) ran out/ }
]

describe('a stream cut after its headers raises the SDK\'s API error, naming the outcome', () => {
  for (const cut of CUTS) {
    test(`openai: ${cut.name}`, async () => {
      const requestId = randomUUID()
      const sdk = openaiClient(gw.url, { headers: { 'x-demo-chunks': '40', 'x-demo-interval-ms': '10', ...cut.headers, 'x-request-id': requestId } })
      const result = await openaiChatStream(sdk)
      assertOpenaiCut(result, cut.outcome, cut.message)
      assert.ok(result.text.startsWith('Long requests '), result.text)
      assert.equal(sdk.attempts.length, 1)
      const line = await gw.accessLine(requestId)
      assert.equal(line.outcome, cut.outcome)
      assert.equal(line.status, 200)
    })

    test(`@anthropic-ai/sdk: ${cut.name}`, async () => {
      const sdk = anthropicClient(gw.url, { headers: { 'x-demo-chunks': '40', 'x-demo-interval-ms': '10', ...cut.headers } })
      const result = await anthropicMessagesStream(sdk)
      assertAnthropicCut(result, cut.outcome, cut.message)
      assert.ok(result.text.startsWith('Long requests '), result.text)
      assert.equal(sdk.attempts.length, 1)
    })
  }
})

describe('retry hints: the SDKs repeat what can succeed, and only that', () => {
  test('a gateway 504 after firstByte is attempted once (x-should-retry: false), by both SDKs', async () => {
    const headers = { 'x-demo-delay-ms': '3000' }
    const openai = openaiClient(`${gw.url}/fb`, { headers })
    const started = performance.now()
    const a = await openaiChatStream(openai)
    assert.ok(a.error instanceof OpenAI.APIError)
    assert.equal(a.error.status, 504)
    assert.equal(a.error.code, 'first_byte_timeout')
    assert.equal(a.error.headers?.get('x-should-retry'), 'false')
    assert.equal(openai.attempts.length, 1)
    assert.ok(performance.now() - started < 2000, 'no retry after the first 504')
    const anthropic = anthropicClient(`${gw.url}/fb`, { headers })
    const b = await anthropicMessagesStream(anthropic)
    assertAnthropicCut(b, 'first_byte_timeout', /within firstByte \(500ms\)/)
    assert.equal((b.error as InstanceType<typeof Anthropic.APIError>).status, 504)
    assert.equal(anthropic.attempts.length, 1)
  })

  test('an overloaded 503 is retried after its Retry-After, and then succeeds', async () => {
    // The busy upstream takes one request at a time and queues none: hold its slot briefly.
    const seen = new Promise<void>((resolve) => demo.events.once('request', () => resolve()))
    const holder = fetch(`${gw.url}/busy/v1/chat/completions`, { method: 'POST', headers: { 'x-demo-delay-ms': '300', 'x-demo-chunks': '1' }, body: '{}' })
    await seen
    const sdk = openaiClient(`${gw.url}/busy`, { headers: fast })
    const result = await openaiChatStream(sdk)
    assert.equal((await holder).status, 200)
    assert.equal(result.error, undefined)
    assert.equal(result.text, FIVE_TOKENS)
    assert.equal(sdk.attempts.length, 2)
    const gap = sdk.attempts[1]!.at - sdk.attempts[0]!.at
    assert.ok(gap >= 950 && gap < 3000, `the retry waited Retry-After (1 s): ${gap} ms`)
  })
})
