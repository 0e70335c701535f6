// The upstream of the stream benches (sse-streams.ts, side-by-side.ts), a child process of its own:
// it prints its port on stdout, then serves
//   GET /health                          a small JSON answer (throughput runs)
//   GET /stream?events=N&interval=MS&start=T[&hold=1]
//                                        text/event-stream: N events MS apart from the instant T
//                                        (performance.timeOrigin + now(), comparable across processes
//                                        on one machine), each carrying the instant it was written;
//                                        then the end, or with hold=1 silence until the client or
//                                        the proxy closes the connection (a stalled stream, kept
//                                        alive by a comment every 500 ms until its event).
//   GET /stream?…&run=R&phase=MS         instead of start: the headers at once, the events from
//                                        the instant of run R's go plus MS
//   GET /waiting?run=R                   how many of run R's streams wait for its go
//   GET /go?run=R&at=T                   run R's streams start at T: a bench opens every stream
//                                        first, however long that takes, then says go
import http from 'node:http'

const now = (): number => performance.timeOrigin + performance.now()
const HEALTH = Buffer.from('{"status":"ok"}')

/** Per run: its go instant once said, or the streams waiting for it. */
const runs = new Map<string, number | Array<(at: number) => void>>()

function whenGo (run: string, start: (at: number) => void): void {
  const state = runs.get(run)
  if (typeof state === 'number') return start(state)
  if (state === undefined) runs.set(run, [start])
  else state.push(start)
}

const server = http.createServer((req, res) => {
  const url = req.url ?? '/'
  if (url.startsWith('/waiting?')) {
    const state = runs.get(new URL(url, 'http://upstream.invalid').searchParams.get('run') ?? '')
    res.end(`${Array.isArray(state) ? state.length : 0}\n`)
    return
  }
  if (url.startsWith('/go?')) {
    const params = new URL(url, 'http://upstream.invalid').searchParams
    const run = params.get('run') ?? ''
    const at = Number(params.get('at'))
    const waiting = runs.get(run)
    runs.set(run, at)
    if (Array.isArray(waiting)) for (const start of waiting) start(at)
    res.end(`${Array.isArray(waiting) ? waiting.length : 0}\n`)
    return
  }
  if (url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': HEALTH.length })
    res.end(HEALTH)
    return
  }
  const params = new URL(url, 'http://upstream.invalid').searchParams
  const events = Number(params.get('events') ?? 20)
  const interval = Number(params.get('interval') ?? 1000)
  const run = params.get('run')
  const hold = params.get('hold') === '1'
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  res.flushHeaders()
  // Until a stalled stream's event, a comment every 500 ms: whatever a proxy's idle limit counts
  // from (the request, the headers, the last byte), the one silence over 1 s is after the event.
  const waiting = hold ? setInterval(() => res.write(': wait\n\n'), 500) : undefined
  let sent = 0
  let timer: NodeJS.Timeout | undefined
  let closed = false
  const begin = (startAt: number): void => {
    if (closed) return
    const tick = (): void => {
      clearInterval(waiting)
      res.write(`data: ${now().toFixed(3)}\n\n`)
      if (++sent === events) { if (!hold) res.end(); return }
      timer = setTimeout(tick, Math.max(0, startAt + sent * interval - now()))
    }
    timer = setTimeout(tick, Math.max(0, startAt - now()))
  }
  if (run === null) begin(Number(params.get('start') ?? now()))
  else whenGo(run, (at) => begin(at + Number(params.get('phase') ?? 0)))
  res.once('close', () => { closed = true; clearTimeout(timer); clearInterval(waiting) })
})
server.keepAliveTimeout = 60_000
// Thousands of connections arrive within a second: a longer accept queue than Node's 511.
server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
  const address = server.address() as { port: number }
  process.stdout.write(`${address.port}\n`)
})
process.on('SIGTERM', () => process.exit(0))
