// The SSE event scanner on its own: which bytes make an event (HTML standard, "Interpreting an
// event stream"), whatever the chunk boundaries, and what it reads from an LLM stream's events:
// usage reports and error records; and the watch built on it, with a clock of its own.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SseEventScanner, type ScannerOptions, type StreamEvent } from '../src/gateway/sse-events.ts'
import { StreamWatch, type StreamMetricsSink } from '../src/gateway/stream-watch.ts'

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
  assert.deepEqual(events, [{ answer: true, error: false, type: 'x' }])
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
  for (const { scanner, events } of everySplit(text, { usage: true, errors: false })) {
    assert.deepEqual(scanner.usage, { input: 25, output: 15 })
    // The preamble and the ping carry no answer; an error record after the preamble does end the wait.
    assert.deepEqual(events.map((e) => e.answer), [false, true, false, true, true])
  }
  const failed = scan(['event: message_start\ndata: {"type":"message_start","message":{}}\n\nevent: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}\n\n'], { usage: false, errors: true })
  assert.deepEqual(failed.events.map((e) => [e.answer, e.error, e.detail]), [[false, false, undefined], [true, true, 'overloaded_error']])
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

/** A metrics sink that records what it is told. */
function recorder (): StreamMetricsSink & { seen: string[] } {
  const seen: string[] = []
  return {
    seen,
    streamFirstEvent: (route, ms) => { seen.push(`first ${route} ${ms}`) },
    streamEventGap: (route, ms) => { seen.push(`gap ${route} ${ms}`) },
    streamTokens: (route, usage) => { seen.push(`tokens ${route} ${usage.input} ${usage.output}`) }
  }
}

test('a watch with metrics: time to the first answer from the headers, then each gap, then the usage once', () => {
  let now = 1000
  const sink = recorder()
  const firsts: StreamEvent[] = []
  const watch = new StreamWatch({ sse: true, route: 'chat', metrics: sink, errors: true, onFirstEvent: (e) => firsts.push(e), now: () => now })
  now = 1200
  watch.chunk(Buffer.from(': thinking\n\nevent: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":7}}}\n\n'))
  assert.equal(watch.firstEventSeen, false)
  now = 2500
  watch.chunk(Buffer.from('event: content_block_delta\ndata: {"type":"content_block_delta"}\n\n'))
  now = 2550
  watch.chunk(Buffer.from('event: content_block_delta\ndata: {"type":"content_block_delta"}\n\nevent: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":2}}\n\n'))
  watch.end()
  watch.end()
  assert.deepEqual(sink.seen, ['first chat 1500', 'gap chat 50', 'gap chat 0', 'tokens chat 7 2'])
  assert.deepEqual(firsts, [{ answer: true, error: false, type: 'content_block_delta' }])
})

test('a watch without metrics stops reading after the first event; on a plain body the first byte is the first event', () => {
  const firsts: StreamEvent[] = []
  const watch = new StreamWatch({ sse: true, route: 'r', metrics: null, errors: true, onFirstEvent: (e) => firsts.push(e) })
  watch.chunk(Buffer.from('data: {"error":{"type":"overloaded_error"}}\n\n'))
  watch.chunk(Buffer.from('data: {"error":{}}\n\n'))
  assert.deepEqual(firsts, [{ answer: true, error: true, type: '', detail: 'overloaded_error' }])

  let now = 0
  const sink = recorder()
  const plain = new StreamWatch({ sse: false, route: 'r', metrics: sink, errors: false, now: () => now })
  now = 30
  plain.chunk(Buffer.from('{"id"'))
  now = 60
  plain.chunk(Buffer.from(':1}'))
  plain.end()
  assert.deepEqual(sink.seen, ['first r 30'])
})

/** A chunk that counts the bytes its indexOf searches: the scanner's work, without a clock. */
class CountingChunk extends Uint8Array {
  searched = 0
  override indexOf (byte: number, from = 0): number {
    const at = super.indexOf(byte, from)
    this.searched += (at === -1 ? this.length : at + 1) - from
    return at
  }
}

test('finding line ends searches each byte of a chunk a bounded number of times, whichever line end the stream uses', () => {
  const event = 'data: {"choices":[{"delta":{"content":"tok"}}],"usage":null}'
  for (const end of ['\n', '\r', '\r\n']) {
    const bytes = Buffer.from((event + end + end).repeat(1000)) // ~64-130 KB, as a fast upstream's coalesced chunk
    const chunk = new CountingChunk(bytes)
    const { events } = scan([chunk as unknown as Buffer])
    assert.equal(events.length, 1000, JSON.stringify(end))
    // Searching afresh for each line-end byte on every line reads to the chunk's end once per line:
    // ~1000 × the chunk. Two searches (LF and CR) of each byte at most is linear.
    assert.ok(chunk.searched <= 2 * chunk.length, `${JSON.stringify(end)}: searched ${chunk.searched} bytes of a ${chunk.length}-byte chunk`)
  }
})
