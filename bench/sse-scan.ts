// What reading a token stream's events costs the gateway (routes[].sse.metrics): the StreamWatch
// fed a recorded-style OpenAI and Anthropic stream, chunk by chunk as undici hands them over, side
// by side with a loop that only touches each chunk (what a route without sse.metrics does).
// In-process and CPU only: ns per event and MB/s, best of several rounds. --batch joins that many
// events into one chunk, as a fast upstream's bytes arrive when the socket buffers them (48 KB,
// 192 KB chunks): the cost per event must not grow with the chunk.
//   node bench/sse-scan.ts [--events N] [--rounds N] [--batch N]
import { StreamWatch, type StreamMetricsSink } from '../src/gateway/stream-watch.ts'
import { positiveInt } from './lib.ts'

const args = process.argv.slice(2)
const option = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`)
  return i === -1 ? fallback : positiveInt(name, args[i + 1] ?? '')
}
const EVENTS = option('events', 50_000)
const ROUNDS = option('rounds', 7)
const BATCH = option('batch', 1)

function batched (events: Buffer[]): Buffer[] {
  if (BATCH === 1) return events
  const chunks: Buffer[] = []
  for (let i = 0; i < events.length; i += BATCH) chunks.push(Buffer.concat(events.slice(i, i + BATCH)))
  return chunks
}

function openaiStream (n: number): Buffer[] {
  const chunks: Buffer[] = []
  for (let i = 0; i < n; i++) {
    chunks.push(Buffer.from(`data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1733300000,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"tok${i} "},"finish_reason":null}],"usage":null}\n\n`))
  }
  chunks.push(Buffer.from('data: {"id":"chatcmpl-123","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46}}\n\ndata: [DONE]\n\n'))
  return chunks
}

function anthropicStream (n: number): Buffer[] {
  const chunks = [Buffer.from('event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":25,"output_tokens":1}}}\n\n')]
  for (let i = 0; i < n; i++) {
    chunks.push(Buffer.from(`event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"tok${i} "}}\n\n`))
  }
  chunks.push(Buffer.from('event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}\n\n'))
  return chunks
}

const sink: StreamMetricsSink = { streamFirstEvent () {}, streamEventGap () {}, streamTokens () {} }

type Variant = (chunks: Buffer[]) => number

const variants: Record<string, Variant> = {
  'no watch (route without sse.metrics)': (chunks) => {
    let bytes = 0
    for (const c of chunks) bytes += c.length
    return bytes
  },
  'watch, first event only (firstEvent set)': (chunks) => {
    const watch = new StreamWatch({ sse: true, route: 'r', metrics: null, errors: false })
    let bytes = 0
    for (const c of chunks) { watch.chunk(c); bytes += c.length }
    watch.end()
    return bytes
  },
  'watch, first-event gate check (holdHeaders)': (chunks) => {
    const watch = new StreamWatch({ sse: true, route: 'r', metrics: null, errors: true })
    let bytes = 0
    for (const c of chunks) { watch.chunk(c); bytes += c.length }
    watch.end()
    return bytes
  },
  'watch with sse.metrics (gaps + usage)': (chunks) => {
    const watch = new StreamWatch({ sse: true, route: 'r', metrics: sink, errors: false })
    let bytes = 0
    for (const c of chunks) { watch.chunk(c); bytes += c.length }
    watch.end()
    return bytes
  }
}

for (const [dialect, events] of [['OpenAI', openaiStream(EVENTS)], ['Anthropic', anthropicStream(EVENTS)]] as const) {
  const total = events.reduce((n, c) => n + c.length, 0)
  const chunks = batched(events)
  console.log(`${dialect}: ${events.length} events, ${(total / events.length).toFixed(0)} bytes each on average, ${chunks.length} chunks of ${(total / chunks.length / 1024).toFixed(1)} KiB`)
  for (const [name, run] of Object.entries(variants)) {
    run(chunks) // warm up
    let best = Infinity
    for (let r = 0; r < ROUNDS; r++) {
      const t0 = process.hrtime.bigint()
      run(chunks)
      best = Math.min(best, Number(process.hrtime.bigint() - t0))
    }
    console.log(`  ${name.padEnd(46)} ${(best / events.length).toFixed(0).padStart(6)} ns/event  ${(total / best * 1000).toFixed(0).padStart(6)} MB/s`)
  }
}
