// The demo upstream's knobs for the time between an LLM stream's headers and its first event: a
// model that thinks (with or without comments meanwhile), and one that fails before answering,
// by reset or by an in-band error record in the OpenAI or the Anthropic dialect; and the usage
// both dialects report in the stream.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Client } from 'undici'
import { startDemoUpstream, type DemoUpstream } from '../src/demo/upstream.ts'
import { nextRequestEnd } from './helpers/upstreams.ts'

let up: DemoUpstream
let faulty: DemoUpstream

before(async () => {
  ;[up, faulty] = await Promise.all([startDemoUpstream(), startDemoUpstream({ knobs: { 'error-event': 'overloaded_error' } })])
})

after(async () => {
  await Promise.all([up.close(), faulty.close()])
})

const CHAT = { method: 'POST' as const, path: '/v1/chat/completions', body: JSON.stringify({ model: 'x', messages: [], stream: true }) }

/** Each body chunk with its arrival time after the response headers, in ms. */
async function timedBody (body: AsyncIterable<Buffer>, headersAt: number): Promise<Array<{ ms: number, text: string }>> {
  const out: Array<{ ms: number, text: string }> = []
  for await (const chunk of body) out.push({ ms: performance.now() - headersAt, text: chunk.toString() })
  return out
}

test('first-event-after-ms: headers at once, `: thinking` comments meanwhile, the first event after the wait', async () => {
  const client = new Client(up.url)
  try {
    const t0 = performance.now()
    const res = await client.request({ method: 'GET', path: '/sse', headers: { 'x-demo-first-event-after-ms': '600', 'x-demo-comment-every-ms': '200', 'x-demo-chunks': '2', 'x-demo-interval-ms': '1' } })
    const headersAt = performance.now()
    assert.equal(res.statusCode, 200)
    assert.ok(headersAt - t0 < 300, `headers after ${headersAt - t0} ms`)
    const chunks = await timedBody(res.body, headersAt)
    const comments = chunks.filter((c) => c.text === ': thinking\n\n')
    assert.equal(comments.length, 2, JSON.stringify(chunks))
    const first = chunks.find((c) => c.text.includes('data:'))!
    assert.ok(first.ms >= 550 && first.ms < 900, `first event after ${first.ms} ms`)
    assert.equal(chunks.filter((c) => c.text.includes('data:')).length, 2)
  } finally {
    await client.close()
  }
})

test('error-event: the chat stream ends cleanly after one OpenAI-style error record, /sse after an Anthropic-style one', async () => {
  const client = new Client(up.url)
  try {
    const ended = nextRequestEnd(up)
    const chat = await client.request({ ...CHAT, headers: { 'content-type': 'application/json', 'x-demo-error-event': 'server_error' } })
    assert.equal(chat.statusCode, 200)
    assert.equal(chat.headers['content-type'], 'text/event-stream')
    const text = await chat.body.text()
    assert.deepEqual(JSON.parse(text.replace(/^data: /, '')), { error: { message: 'demo upstream fault: server_error', type: 'server_error', code: null } })
    assert.ok(text.endsWith('\n\n') && text.split('\n\n').length === 2, text)
    assert.equal((await ended).fault, 'error-event server_error')

    const sse = await client.request({ method: 'GET', path: '/sse', headers: { 'x-demo-error-event': 'overloaded_error' } })
    const record = await sse.body.text()
    assert.match(record, /^event: error\ndata: \{"type":"error","error":\{"type":"overloaded_error","message":"demo upstream fault: overloaded_error"\}\}\n\n$/)

    // Messages: the preamble (message_start, content_block_start) comes first, as from the real API.
    const messages = await client.request({ method: 'POST', path: '/v1/messages', headers: { 'content-type': 'application/json', 'x-demo-error-event': 'overloaded_error' }, body: JSON.stringify({ model: 'x', max_tokens: 10, messages: [], stream: true }) })
    const types = [...(await messages.body.text()).matchAll(/^event: (\S+)$/gm)].map((m) => m[1])
    assert.deepEqual(types, ['message_start', 'content_block_start', 'error'])
  } finally {
    await client.close()
  }
})

test('reset-after-headers: the headers, then a reset before any event', async () => {
  const client = new Client(up.url)
  try {
    const res = await client.request({ ...CHAT, headers: { 'content-type': 'application/json', 'x-demo-reset-after-headers': '1', 'x-demo-first-event-after-ms': '100' } })
    assert.equal(res.statusCode, 200)
    await assert.rejects(res.body.text(), (err: Error & { code?: string }) => ['UND_ERR_SOCKET', 'ECONNRESET'].includes(err.code ?? ''))
  } finally {
    await client.destroy()
  }
})

test('an instance\'s knob defaults apply to requests that name none; a bad error-event is a 400', async () => {
  const client = new Client(faulty.url)
  try {
    const res = await client.request({ method: 'GET', path: '/sse' })
    assert.match(await res.body.text(), /"overloaded_error"/)
    const bad = await client.request({ method: 'GET', path: '/sse', headers: { 'x-demo-error-event': 'Not A Type' } })
    assert.equal(bad.statusCode, 400)
    assert.match(await bad.body.text(), /invalid x-demo-error-event: Not A Type/)
  } finally {
    await client.close()
  }
})

test('usage in the stream: OpenAI\'s last chunk with stream_options.include_usage, Anthropic\'s message_start and message_delta', async () => {
  const client = new Client(up.url)
  try {
    const body = (extra: object): string => JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'three word prompt' }], stream: true, ...extra })
    const headers = { 'content-type': 'application/json', 'x-demo-chunks': '4', 'x-demo-interval-ms': '1' }
    const plain = await (await client.request({ method: 'POST', path: '/v1/chat/completions', headers, body: body({}) })).body.text()
    assert.doesNotMatch(plain, /usage/)
    const chat = await (await client.request({ method: 'POST', path: '/v1/chat/completions', headers, body: body({ stream_options: { include_usage: true } }) })).body.text()
    const last = chat.split('\n\n').filter(Boolean).at(-2)!
    assert.deepEqual((JSON.parse(last.replace(/^data: /, '')) as { usage: unknown, choices: unknown }).usage, { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 })
    const messages = await (await client.request({ method: 'POST', path: '/v1/messages', headers, body: body({ max_tokens: 10 }) })).body.text()
    assert.match(messages, /"type":"message_start".*"usage":\{"input_tokens":3,"output_tokens":0\}/)
    assert.match(messages, /"type":"message_delta".*"usage":\{"output_tokens":4\}/)
  } finally {
    await client.close()
  }
})
