// The SSE event scanner on its own: which bytes make an event (HTML standard, "Interpreting an
// event stream"), whatever the chunk boundaries, and what it reads from an LLM stream's events:
// usage reports and error records.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SseEventScanner, type ScannerOptions, type StreamEvent } from '../src/gateway/sse-events.ts'

function scan (chunks: Array<string | Buffer>, options: ScannerOptions = { usage: false, errors: false }): { events: StreamEvent[], scanner: SseEventScanner } {
  const events: StreamEvent[] = []
  const scanner = new SseEventScanner(options, (e) => events.push(e))
  for (const c of chunks) scanner.push(typeof c === 'string' ? Buffer.from(c) : c)
  return { events, scanner }
}

/** The same bytes cut at every position, one byte per chunk included, give the same events. */
function everySplit (text: string, options?: ScannerOptions): Array<{ events: StreamEvent[], scanner: SseEventScanner }> {
  const bytes = Buffer.from(text)
  const results = [scan([bytes], options)]
  for (let at = 1; at < bytes.length; at++) results.push(scan([bytes.subarray(0, at), bytes.subarray(at)], options))
  results.push(scan([...bytes].map((b) => Buffer.from([b])), options))
  return results
}

test('comments, heartbeats and event lines without data are no events; each data event is one', () => {
  const text = ': keepalive\n\n: OPENROUTER PROCESSING\n\nevent: ping\n\nid: 7\nretry: 10\n\ndata: one\n\nevent: tick\ndata: {"i":2}\ndata: more\n\ndata\n\ndata:\n\n'
  for (const { events, scanner } of everySplit(text)) {
    assert.deepEqual(events.map((e) => e.type), ['', 'tick', '', ''])
    assert.equal(scanner.events, 4)
  }
})

test('CRLF, LF and CR line ends all end lines, and a CRLF split across chunks is one line end', () => {
  for (const text of ['data: a\r\n\r\ndata: b\r\n\r\n', 'data: a\r\rdata: b\r\r', 'data: a\n\ndata: b\r\n\n']) {
    for (const { events } of everySplit(text)) assert.equal(events.length, 2, JSON.stringify(text))
  }
  // CR then LF in the next chunk: one line end, so no blank line yet, so no event.
  assert.equal(scan(['data: a\r', '\n']).events.length, 0)
  assert.equal(scan(['data: a\r', '\n', '\r\n']).events.length, 1)
})

test('an event is dispatched only when its blank line arrives', () => {
  const { events, scanner } = scan(['data: {"choices":[]}\n'])
  assert.equal(events.length, 0)
  scanner.push(Buffer.from('\n'))
  assert.equal(events.length, 1)
})

test('a byte order mark at the start of the stream is skipped', () => {
  const { events } = scan([Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('event: x\ndata: 1\n\n')])])
  assert.deepEqual(events, [{ error: false, type: 'x' }])
})

test('OpenAI: the usage of the last chunk, never the null usage of the others', () => {
  const text = [
    'data: {"id":"c","choices":[{"delta":{"content":"Hi"}}],"usage":null}',
    'data: {"id":"c","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46}}',
    'data: [DONE]'
  ].join('\n\n') + '\n\n'
  for (const { scanner, events } of everySplit(text, { usage: true, errors: false })) {
    assert.equal(events.length, 3)
    assert.deepEqual(scanner.usage, { input: 12, output: 34 })
  }
})

test('Anthropic: input from message_start, output from the last message_delta', () => {
  const text = [
    'event: message_start\ndata: {"type":"message_start","message":{"id":"m","usage":{"input_tokens":25,"output_tokens":1}}}',
    'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"type":"text_delta","text":"usage is"}}',
    'event: ping\ndata: {"type": "ping"}',
    'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}',
    'event: message_stop\ndata: {"type":"message_stop"}'
  ].join('\n\n') + '\n\n'
  for (const { scanner } of everySplit(text, { usage: true, errors: false })) assert.deepEqual(scanner.usage, { input: 25, output: 15 })
})

test('without usage asked for, nothing is parsed; a huge event is no usage report but still an event', () => {
  assert.deepEqual(scan(['data: {"usage":{"prompt_tokens":1,"completion_tokens":2}}\n\n']).scanner.usage, { input: null, output: null })
  const huge = `data: {"usage":{"prompt_tokens":1,"completion_tokens":2},"pad":"${'x'.repeat(70_000)}"}\n\n`
  const { scanner, events } = scan([huge.slice(0, 30_000), huge.slice(30_000)], { usage: true, errors: false })
  assert.equal(events.length, 1)
  assert.deepEqual(scanner.usage, { input: null, output: null })
  // The next, small event is read again.
  scanner.push(Buffer.from('data: {"usage":{"prompt_tokens":3,"completion_tokens":4}}\n\n'))
  assert.deepEqual(scanner.usage, { input: 3, output: 4 })
})

test('error records: Anthropic event: error, OpenAI data {"error":…}, longhaul-error; an answer that mentions "error" is none', () => {
  const on = { usage: false, errors: true }
  const cases: Array<[string, boolean]> = [
    ['event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n', true],
    ['data: {"error":{"message":"The server is overloaded","type":"server_error","code":null}}\n\n', true],
    ['event: longhaul-error\ndata: {"code":"stream_idle_timeout"}\n\n', true],
    ['data: {"choices":[{"delta":{"content":"\\"error\\" is a word"}}]}\n\n', false],
    ['data: {"error":null,"choices":[]}\n\n', false],
    ['data: not json "error"\n\n', false]
  ]
  for (const [text, error] of cases) {
    for (const { events } of everySplit(text, on)) assert.equal(events[0]?.error, error, text)
    assert.equal(scan([text]).events[0]?.error, false, 'not checked unless asked')
  }
})

test('error checks can be switched off after the first event', () => {
  const events: StreamEvent[] = []
  const scanner = new SseEventScanner({ usage: false, errors: true }, (e) => events.push(e))
  scanner.push(Buffer.from('data: {"choices":[]}\n\n'))
  scanner.errors = false
  scanner.push(Buffer.from('event: error\ndata: {"error":{}}\n\n'))
  assert.deepEqual(events.map((e) => e.error), [false, false])
})
