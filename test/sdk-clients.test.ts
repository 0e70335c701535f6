// The official SDKs through the gateway, as their users write it: openai's chat completions stream
// and @anthropic-ai/sdk's Messages stream, each to the demo upstream's endpoint in its dialect.
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { startGateway, type RunningGateway } from './helpers/gateway.ts'
import { startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { anthropicClient, anthropicMessagesStream, openaiChatStream, openaiClient } from './helpers/sdk.ts'

let demo: DemoUpstream
let gw: RunningGateway

before(async () => {
  demo = await startDemoUpstream()
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams:
  demo: { endpoints: [${demo.url}] }
routes:
  - name: llm
    match: { pathPrefix: /v1/, methods: [POST] }
    upstream: demo
    timeouts: { firstByte: 2s, streamIdle: 600ms, request: 30s }
`)
})

after(async () => {
  await gw?.stop()
  await demo?.close()
})

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
