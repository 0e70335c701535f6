// Token-stream metrics (routes[].sse.metrics): after a stream whose timing and usage are known,
// longhaul_stream_first_event_seconds, longhaul_stream_event_gap_seconds and
// longhaul_stream_tokens_total say the same, within 10 %; a route that does not ask has none.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { startGateway, type RunningGateway } from './helpers/gateway.ts'
import { startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { metricsText, metricValue } from './helpers/resilience.ts'

let demo: DemoUpstream
let gw: RunningGateway

before(async () => {
  demo = await startDemoUpstream()
  const route = (name: string, metrics: boolean): string => `
  - name: ${name}
    match: { pathPrefix: /${name}/ }
    upstream: demo
    rewrite: { stripPrefix: /${name} }
    sse: { metrics: ${metrics} }`
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams:
  demo: { endpoints: [${demo.url}] }
routes:${route('anthropic', true)}${route('openai', true)}${route('plain', false)}
`)
})

after(async () => {
  await gw?.stop()
  await demo?.close()
})

/** Streams a POST and notes, after the response headers, when the chunk holding each marker arrived. */
async function stream (path: string, headers: Record<string, string>, body: object, markers: string[]): Promise<Record<string, number>> {
  const res = await request(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
  const headersAt = performance.now()
  assert.equal(res.statusCode, 200)
  const seen: Record<string, number> = {}
  for await (const chunk of res.body) {
    const text = (chunk as Buffer).toString()
    for (const m of markers) if (seen[m] === undefined && text.includes(m)) seen[m] = performance.now() - headersAt
  }
  return seen
}

/**
 * A figure the gateway measured, against the stream's known timing: within 10 % of it, where a
 * loaded machine's late timers only ever add time, and never later than the client saw it (+10 %).
 */
const matches = (actualSeconds: number, knownMs: number, clientSawMs: number, what: string): void => {
  const actual = actualSeconds * 1000
  const high = Math.max(knownMs, clientSawMs) * 1.1
  assert.ok(actual >= knownMs * 0.9 && actual <= high, `${what}: ${actual.toFixed(1)} ms, known ${knownMs} ms, the client saw ${clientSawMs.toFixed(1)} ms`)
}

describe('sse.metrics', () => {
  test('an Anthropic stream: first event after its thinking, the gaps between tokens, input and output tokens', async () => {
    const seen = await stream('/anthropic/v1/messages', { 'x-demo-first-event-after-ms': '1000', 'x-demo-chunks': '4', 'x-demo-interval-ms': '200' },
      { model: 'x', max_tokens: 10, messages: [{ role: 'user', content: 'three word prompt' }], stream: true },
      ['content_block_delta', 'message_stop'])
    const text = await metricsText(gw)
    const route = { route: 'anthropic' }
    assert.equal(metricValue(text, 'longhaul_stream_first_event_seconds_count', route), 1)
    // The preamble (message_start, content_block_start) came at once: the clock stopped at the first token.
    matches(metricValue(text, 'longhaul_stream_first_event_seconds_sum', route), 1000 + 200, seen.content_block_delta!, 'time to first event')
    // Three gaps between four tokens, then content_block_stop, message_delta and message_stop.
    assert.equal(metricValue(text, 'longhaul_stream_event_gap_seconds_count', route), 6)
    matches(metricValue(text, 'longhaul_stream_event_gap_seconds_sum', route), 3 * 200, seen.message_stop! - seen.content_block_delta!, 'sum of the gaps')
    assert.equal(metricValue(text, 'longhaul_stream_tokens_total', { ...route, kind: 'input' }), 3)
    assert.equal(metricValue(text, 'longhaul_stream_tokens_total', { ...route, kind: 'output' }), 4)
  })

  test('an OpenAI stream with include_usage: the usage of its last chunk', async () => {
    const seen = await stream('/openai/v1/chat/completions', { 'x-demo-first-event-after-ms': '800', 'x-demo-chunks': '3', 'x-demo-interval-ms': '50' },
      { model: 'x', messages: [{ role: 'user', content: 'a four word prompt' }], stream: true, stream_options: { include_usage: true } },
      ['chat.completion.chunk'])
    const text = await metricsText(gw)
    const route = { route: 'openai' }
    matches(metricValue(text, 'longhaul_stream_first_event_seconds_sum', route), 800 + 50, seen['chat.completion.chunk']!, 'time to first event')
    assert.equal(metricValue(text, 'longhaul_stream_tokens_total', { ...route, kind: 'input' }), 4)
    assert.equal(metricValue(text, 'longhaul_stream_tokens_total', { ...route, kind: 'output' }), 3)
  })

  test('a route without sse.metrics has no token-stream series', async () => {
    await stream('/plain/v1/chat/completions', { 'x-demo-chunks': '2', 'x-demo-interval-ms': '1' }, { model: 'x', messages: [], stream: true, stream_options: { include_usage: true } }, [])
    const text = await metricsText(gw)
    assert.doesNotMatch(text, /^longhaul_stream_(first_event_seconds|event_gap_seconds|tokens_total)\w*\{[^}]*route="plain"/m)
  })
})
