// The built-in demo upstream: OpenAI- and Anthropic-style endpoints that answer slowly, a few
// plain endpoints (health, headers, echo, upload, bytes, sse), per-request fault knobs
// (see knobs.ts) and the target of `longhaul probe` (see probe-target.ts). `longhaul
// demo-upstream` serves it; the tests use it as their fault injector.
import { http } from '../node-http.ts'
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, Server, ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { EventEmitter } from 'node:events'
import { parseKnobs } from './knobs.ts'
import { Exchange, MAX_JSON_BODY, type DemoRequestStart, type DemoRequestEnd } from './exchange.ts'
import type { DemoKnobs, KnobDefaults } from './knobs.ts'
import { serveEcho } from './websocket.ts'
import { PROBE_PREFIX, ProbeTarget } from './probe-target.ts'
import type { Duplex } from 'node:stream'

export { DEMO_KNOBS, parseKnobs } from './knobs.ts'
export type { DemoKnob, DemoKnobName, DemoKnobs, KnobDefaults } from './knobs.ts'
export type { DemoRequestStart, DemoRequestEnd } from './exchange.ts'

export interface DemoUpstreamOptions {
  host?: string // default 127.0.0.1
  port?: number // default 0 = ephemeral
  keepAliveTimeoutMs?: number // server keep-alive idle, default 5000
  knobs?: KnobDefaults // knob values for requests that name none (one faulty endpoint of a pair)
}

export interface DemoUpstreamEvents {
  request: [DemoRequestStart]
  'request-end': [DemoRequestEnd]
}

export interface DemoUpstream {
  url: string // http://127.0.0.1:PORT
  port: number
  server: Server
  events: EventEmitter<DemoUpstreamEvents>
  inflight(): number
  close(): Promise<void> // closes all sockets too
}

const DEFAULT_CHUNKS = 40
const DEFAULT_INTERVAL_MS = 50
const BYTES_CHUNK = 64 * 1024
const PATTERN = Buffer.from('abcdefghijklmnopqrstuvwxyz0123456789\n')
// 64 KiB plus one pattern, so that any slice of 64 KiB can start at any pattern offset.
const PATTERN_BLOCK = Buffer.alloc(BYTES_CHUNK + PATTERN.length, PATTERN)
const WORDS = (
  'Long requests need patience: the answer arrives one token at a time, the gateway keeps the ' +
  'stream open while it flows, and no timeout cuts a healthy response short.'
).split(' ')

const isErrorStatus = (k: DemoKnobs): k is DemoKnobs & { status: number } => (k.status ?? 200) >= 400
const faultBody = (status: number) => ({
  error: { message: `demo upstream fault: status ${status}`, type: 'demo_fault', code: status },
})
const sseHeaders = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }

type Handler = (x: Exchange, k: DemoKnobs, url: URL) => Promise<void>

async function health (x: Exchange, k: DemoKnobs): Promise<void> {
  await x.readBody(false)
  if (!(await x.prelude())) return
  const status = k.status ?? 200
  await x.json(status, { status: status < 400 ? 'ok' : 'unhealthy' })
}

async function headers (x: Exchange, k: DemoKnobs): Promise<void> {
  await x.readBody(false)
  if (!(await x.prelude())) return
  await x.json(k.status ?? 200, { method: x.req.method, url: x.req.url, headers: x.req.headers })
}

/** How one LLM API spells a slow answer: its stream events and its whole-answer JSON. */
interface Dialect {
  idPrefix: string
  /** Written right after the response headers, before the first token (not a chunk). */
  streamStart (id: string, model: string, promptTokens: number): string
  token (id: string, model: string, text: string): string
  /** usage: the prompt's token count when the stream reports usage at its end (OpenAI: stream_options.include_usage). */
  streamEnd (id: string, model: string, tokens: number, promptTokens: number, usage: boolean): string
  /** An in-band error record, as the API sends one after a 200 (error-event knob). */
  errorRecord (type: string): string
  answer (id: string, model: string, content: string, promptTokens: number, tokens: number): object
}

const created = (): number => Math.floor(Date.now() / 1000)

// OpenAI chat completions: `data:` chunks, then `data: [DONE]`.
const OPENAI: Dialect = {
  idPrefix: 'chatcmpl-demo-',
  streamStart: () => '',
  token: (id, model, text) => openaiChunk(id, model, { content: text }, null),
  streamEnd: (id, model, tokens, promptTokens, usage) => `${openaiChunk(id, model, {}, 'stop')}${usage ? openaiUsageChunk(id, model, promptTokens, tokens) : ''}data: [DONE]\n\n`,
  // OpenAI-compatible servers (vLLM, OpenRouter) report a failure mid-stream as `data: {"error":…}`.
  errorRecord: (type) => `data: ${JSON.stringify({ error: { message: `demo upstream fault: ${type}`, type, code: null } })}\n\n`,
  answer: (id, model, content, promptTokens, tokens) => ({
    id,
    object: 'chat.completion',
    created: created(),
    model,
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: { prompt_tokens: promptTokens, completion_tokens: tokens, total_tokens: promptTokens + tokens },
  }),
}

function openaiChunk (id: string, model: string, delta: object, finish: string | null): string {
  return `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: created(), model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`
}

/** With stream_options.include_usage, a last chunk with no choices carries the usage. */
function openaiUsageChunk (id: string, model: string, promptTokens: number, tokens: number): string {
  return `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: created(), model, choices: [], usage: { prompt_tokens: promptTokens, completion_tokens: tokens, total_tokens: promptTokens + tokens } })}\n\n`
}

// Anthropic Messages: named events, message_start … message_stop.
const sseEvent = (data: { type: string } & Record<string, unknown>): string => `event: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`
const ANTHROPIC: Dialect = {
  idPrefix: 'msg_demo_',
  streamStart: (id, model, promptTokens) =>
    sseEvent({ type: 'message_start', message: { id, type: 'message', role: 'assistant', content: [], model, stop_reason: null, stop_sequence: null, usage: { input_tokens: promptTokens, output_tokens: 0 } } }) +
    sseEvent({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
  token: (_id, _model, text) => sseEvent({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }),
  streamEnd: (_id, _model, tokens) =>
    sseEvent({ type: 'content_block_stop', index: 0 }) +
    sseEvent({ type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: tokens } }) +
    sseEvent({ type: 'message_stop' }),
  errorRecord: (type) => anthropicError(type),
  answer: (id, model, content, promptTokens, tokens) => ({
    id,
    type: 'message',
    role: 'assistant',
    model,
    content: [{ type: 'text', text: content }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: promptTokens, output_tokens: tokens },
  }),
}

function anthropicError (type: string): string {
  return sseEvent({ type: 'error', error: { type, message: `demo upstream fault: ${type}` } })
}

/** A slow LLM answer in one dialect: the chat completions and Messages endpoints share knobs and pacing. */
async function llm (x: Exchange, k: DemoKnobs, dialect: Dialect): Promise<void> {
  const raw = await x.readBody(true)
  if (raw === 'too-large') return x.json(413, { error: `request body larger than ${MAX_JSON_BODY} bytes` })
  let body: unknown
  try {
    body = JSON.parse(raw.toString('utf8'))
  } catch (err) {
    return x.json(400, { error: `invalid JSON body: ${(err as Error).message}` })
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return x.json(400, { error: 'invalid JSON body: expected an object' })
  }
  const stream = (body as { stream?: unknown }).stream
  if (stream !== undefined && typeof stream !== 'boolean') {
    return x.json(400, { error: 'invalid JSON body: "stream" must be a boolean' })
  }
  if (!(await x.prelude())) return
  if (isErrorStatus(k)) return x.json(k.status, faultBody(k.status))
  const status = k.status ?? 200
  const chunks = k.chunks ?? DEFAULT_CHUNKS
  const interval = k.intervalMs ?? DEFAULT_INTERVAL_MS
  const id = `${dialect.idPrefix}${x.id}`
  const model = 'longhaul-demo'
  const token = (i: number): string => `${WORDS[i % WORDS.length]} `
  const messages = (body as { messages?: unknown }).messages
  const promptTokens = Array.isArray(messages)
    ? messages.reduce<number>((n, m) => {
        const c = (m as { content?: unknown } | null)?.content
        return n + (typeof c === 'string' ? c.split(/\s+/).filter(Boolean).length : 0)
      }, 0)
    : 0

  if (stream === true) {
    if (!(await x.begin(status, sseHeaders))) return
    x.res.flushHeaders()
    const start = dialect.streamStart(id, model, promptTokens)
    if (start !== '' && !(await x.write(start))) return
    if (!(await x.beforeFirstEvent(dialect.errorRecord))) return
    for (let i = 0; i < chunks; i++) {
      if (!(await x.sleep(interval)) || !(await x.checkpoint(i))) return
      if (!(await x.write(dialect.token(id, model, token(i))))) return
    }
    if (!(await x.checkpoint(chunks))) return
    const usage = (body as { stream_options?: { include_usage?: unknown } }).stream_options?.include_usage === true
    x.end(dialect.streamEnd(id, model, chunks, promptTokens, usage))
    return
  }

  // Not streamed: the answer is "generated" token by token, then sent at once. stall-after /
  // reset-after N≥1 act after N tokens, before any response byte; stall-after=0 sends headers first.
  if (k.stallAfter === 0) {
    await x.begin(status, { 'content-type': 'application/json' })
    return
  }
  const stops = [k.stallAfter, k.resetAfter].filter((n): n is number => n !== undefined && n <= chunks)
  if (stops.length > 0) {
    const stop = Math.min(...stops)
    if (await x.sleep(stop * interval)) await x.checkpoint(stop)
    return
  }
  if (!(await x.sleep(chunks * interval))) return
  const content = Array.from({ length: chunks }, (_, i) => token(i)).join('').trimEnd()
  await x.json(status, dialect.answer(id, model, content, promptTokens, chunks))
}

async function sse (x: Exchange, k: DemoKnobs): Promise<void> {
  await x.readBody(false)
  if (!(await x.prelude())) return
  if (isErrorStatus(k)) return x.json(k.status, faultBody(k.status))
  if (!(await x.begin(k.status ?? 200, sseHeaders))) return
  x.res.flushHeaders()
  if (!(await x.beforeFirstEvent(anthropicError))) return
  const chunks = k.chunks ?? DEFAULT_CHUNKS
  const interval = k.intervalMs ?? DEFAULT_INTERVAL_MS
  for (let i = 0; i < chunks; i++) {
    if (!(await x.sleep(interval)) || !(await x.checkpoint(i))) return
    const event = `id: ${i + 1}\nevent: tick\ndata: {"i":${i + 1}}\n\n`
    if (k.pauseAfter === i) {
      // A thinking upstream: silent between two events, or (pause-mid-event) inside one.
      const split = k.pauseMidEvent ? event.indexOf('\n') + 1 : 0
      if (split > 0 && !(await x.write(event.slice(0, split)))) return
      if (!(await x.sleep(k.pauseMs)) || !(await x.write(event.slice(split)))) return
    } else if (!(await x.write(event))) return
  }
  if (await x.checkpoint(chunks)) x.end()
}

async function echo (x: Exchange, k: DemoKnobs): Promise<void> {
  // Faults that replace the response act after the whole request was read.
  if (k.emptyReply || k.malformed || k.resetAfter === 0 || isErrorStatus(k)) await x.readBody(false)
  if (!(await x.prelude())) return
  if (isErrorStatus(k)) return x.json(k.status, faultBody(k.status))
  const type = x.req.headers['content-type'] ?? 'application/octet-stream'
  if (!(await x.begin(k.status ?? 200, { 'content-type': type }))) return
  let written = 0
  for await (const chunk of x.req as AsyncIterable<Buffer>) {
    x.bytesIn += chunk.length
    if (!(await x.checkpoint(written)) || !(await x.write(chunk))) return
    written++
  }
  if (await x.checkpoint(written)) x.end()
}

async function upload (x: Exchange, k: DemoKnobs): Promise<void> {
  // stall-after / reset-after N≥1 count the request body chunks received.
  let received = 0
  for await (const chunk of x.req as AsyncIterable<Buffer>) {
    x.bytesIn += chunk.length
    if (!(await x.checkpoint(++received))) return
  }
  if (!(await x.prelude())) return
  if (isErrorStatus(k)) return x.json(k.status, faultBody(k.status))
  await x.json(k.status ?? 200, { bytes: x.bytesIn })
}

async function bytes (x: Exchange, k: DemoKnobs, url: URL): Promise<void> {
  const arg = url.pathname.slice('/bytes/'.length)
  const chunked = url.searchParams.get('chunked')
  await x.readBody(false)
  if (!/^\d+$/.test(arg) || !Number.isSafeInteger(Number(arg))) return x.json(400, { error: `invalid byte count: ${arg}` })
  if (chunked !== null && chunked !== '0' && chunked !== '1') return x.json(400, { error: `invalid chunked: ${chunked}` })
  if (!(await x.prelude())) return
  if (isErrorStatus(k)) return x.json(k.status, faultBody(k.status))
  const n = Number(arg)
  const head: OutgoingHttpHeaders = { 'content-type': 'application/octet-stream' }
  if (chunked !== '1') head['content-length'] = n
  if (!(await x.begin(k.status ?? 200, head))) return
  if (x.req.method === 'HEAD') return x.end()
  const interval = k.intervalMs ?? 0 // optional pacing: a slow download
  let sent = 0
  let written = 0
  while (sent < n) {
    if (interval > 0 && written > 0 && !(await x.sleep(interval))) return
    if (!(await x.checkpoint(written))) return
    const len = Math.min(BYTES_CHUNK, n - sent)
    const offset = sent % PATTERN.length
    if (!(await x.write(PATTERN_BLOCK.subarray(offset, offset + len)))) return
    sent += len
    written++
  }
  if (interval > 0 && written > 0 && !(await x.sleep(interval))) return
  if (await x.checkpoint(written)) x.end()
}

interface Route {
  path: string | RegExp
  methods: readonly string[] | null // null = any
  handler: Handler
}

const ROUTES: readonly Route[] = [
  { path: '/v1/chat/completions', methods: ['POST'], handler: (x, k) => llm(x, k, OPENAI) },
  { path: '/v1/messages', methods: ['POST'], handler: (x, k) => llm(x, k, ANTHROPIC) },
  { path: '/health', methods: ['GET', 'HEAD'], handler: health },
  { path: '/headers', methods: null, handler: headers },
  { path: '/echo', methods: null, handler: echo },
  { path: '/upload', methods: ['POST', 'PUT'], handler: upload },
  { path: /^\/bytes\/[^/]+$/, methods: ['GET', 'HEAD'], handler: bytes },
  { path: '/sse', methods: ['GET'], handler: sse },
]

async function handle (x: Exchange, defaults: KnobDefaults, probes: ProbeTarget): Promise<void> {
  const url = new URL(x.req.url ?? '/', 'http://demo.invalid')
  // The probe target answers under any path prefix, so it is reachable through a hop that routes by prefix.
  const at = url.pathname.indexOf(PROBE_PREFIX)
  if (at >= 0) return probes.handle(x, new URL(url.pathname.slice(at) + url.search, url))
  const method = x.req.method ?? 'GET'
  const route = ROUTES.find((r) => (typeof r.path === 'string' ? r.path === url.pathname : r.path.test(url.pathname)))
  if (route === undefined) {
    await x.readBody(false)
    return x.json(404, { error: `not found: ${method} ${url.pathname}` })
  }
  if (route.methods !== null && !route.methods.includes(method)) {
    await x.readBody(false)
    x.res.setHeader('allow', route.methods.join(', '))
    return x.json(405, { error: `method not allowed: ${method} ${url.pathname}` })
  }
  const parsed = parseKnobs(x.req.headers, url.searchParams, defaults)
  if (!parsed.ok) {
    await x.readBody(false)
    return x.json(400, { error: parsed.error })
  }
  x.knobs = parsed.knobs
  await route.handler(x, parsed.knobs, url)
}

export async function startDemoUpstream (opts: DemoUpstreamOptions = {}): Promise<DemoUpstream> {
  const host = opts.host ?? '127.0.0.1'
  const events = new EventEmitter<DemoUpstreamEvents>()
  const active = new Set<Exchange>()
  const sockets = new Set<Socket>()
  const idleTimers = new Map<Socket, NodeJS.Timeout>()
  const probes = new ProbeTarget()
  let nextId = 0
  let closing: Promise<void> | undefined

  const server = http.createServer()
  server.keepAliveTimeout = opts.keepAliveTimeoutMs ?? 5000
  server.requestTimeout = 0 // long uploads and stalls are the point; the peer decides when to leave

  const clearIdle = (socket: Socket): void => {
    const t = idleTimers.get(socket)
    if (t !== undefined) clearTimeout(t)
    idleTimers.delete(socket)
  }

  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => {
      sockets.delete(socket)
      clearIdle(socket)
    })
  })

  // WebSocket echo at /ws (delay-ms and status knobs act before the handshake). One
  // request/request-end pair per connection; completed = the client closed the session with a
  // close frame, aborted = the connection went away without one.
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://demo.invalid')
    const start: DemoRequestStart = { id: ++nextId, method: req.method ?? '', path: req.url ?? '', headers: req.headers }
    const startedAt = performance.now()
    const session = { bytesIn: 0, bytesOut: 0, closeReceived: false }
    let fault: string | null = null
    socket.on('error', () => {})
    socket.once('close', () => {
      clearTimeout(delay)
      events.emit('request-end', {
        ...start,
        completed: session.closeReceived,
        aborted: !session.closeReceived && fault === null && closing === undefined,
        bytesIn: session.bytesIn,
        bytesOut: session.bytesOut,
        startedAt,
        endedAt: performance.now(),
        fault
      })
    })
    events.emit('request', start)
    const refuse = (status: number, error: string): void => {
      fault = `status ${status}`
      const body = JSON.stringify({ error })
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
    }
    const parsed = parseKnobs(req.headers, url.searchParams)
    const go = (): void => {
      if (socket.destroyed) return
      if (url.pathname !== '/ws') return refuse(404, `not found: upgrade ${url.pathname}`)
      if (!parsed.ok) return refuse(400, parsed.error)
      if ((parsed.knobs.status ?? 200) >= 400) return refuse(parsed.knobs.status!, `demo upstream fault: status ${parsed.knobs.status!}`)
      if (!serveEcho(req, socket, head, session)) refuse(400, 'not a WebSocket opening handshake')
    }
    const delay = setTimeout(go, parsed.ok ? parsed.knobs.delayMs : 0)
  })

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket
    clearIdle(socket)
    const x = new Exchange(++nextId, req, res)
    if (closing !== undefined) x.selfClosed = true
    active.add(x)
    res.once('close', () => {
      active.delete(x)
      if (closing !== undefined) x.selfClosed = true
      const end = x.done()
      const idleMs = x.knobs?.closeIdleAfterMs
      if (idleMs !== undefined && end.completed && !socket.destroyed && ![...active].some((a) => a.socket === socket)) {
        clearIdle(socket)
        // Simulates a backend whose keep-alive is shorter than it announces.
        const t = setTimeout(() => {
          idleTimers.delete(socket)
          socket.destroy()
        }, idleMs)
        t.unref()
        idleTimers.set(socket, t)
      }
      events.emit('request-end', end)
    })
    events.emit('request', { id: x.id, method: req.method ?? '', path: req.url ?? '', headers: req.headers })
    handle(x, opts.knobs ?? {}, probes).catch(() => {
      // A request stream that errors means the peer went away; anything else is our bug.
      if (!x.ended && !req.destroyed) {
        x.fault ??= 'internal-error'
        x.selfClosed = true
      }
      if (!socket.destroyed) socket.destroy()
    })
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  const urlHost = host.includes(':') ? `[${host}]` : host

  return {
    url: `http://${urlHost}:${port}`,
    port,
    server,
    events,
    inflight: () => active.size,
    close (): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        for (const t of idleTimers.values()) clearTimeout(t)
        idleTimers.clear()
        for (const x of active) x.selfClosed = true
        // Resolve once the server is closed and every exchange has emitted its 'request-end'.
        const check = (): void => {
          if (active.size > 0) return
          events.off('request-end', check)
          resolve()
        }
        server.close(() => {
          events.on('request-end', check)
          check()
        })
        server.closeAllConnections()
        for (const s of sockets) s.destroy()
      })
      return closing
    },
  }
}
