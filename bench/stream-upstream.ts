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
import http from 'node:http'

const now = (): number => performance.timeOrigin + performance.now()
const HEALTH = Buffer.from('{"status":"ok"}')

const server = http.createServer((req, res) => {
  const url = req.url ?? '/'
  if (url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': HEALTH.length })
    res.end(HEALTH)
    return
  }
  const params = new URL(url, 'http://upstream.invalid').searchParams
  const events = Number(params.get('events') ?? 20)
  const interval = Number(params.get('interval') ?? 1000)
  const startAt = Number(params.get('start') ?? now())
  const hold = params.get('hold') === '1'
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  res.flushHeaders()
  // Until a stalled stream's event, a comment every 500 ms: whatever a proxy's idle limit counts
  // from (the request, the headers, the last byte), the one silence over 1 s is after the event.
  const waiting = hold ? setInterval(() => res.write(': wait\n\n'), 500) : undefined
  let sent = 0
  let timer: NodeJS.Timeout | undefined
  const tick = (): void => {
    clearInterval(waiting)
    res.write(`data: ${now().toFixed(3)}\n\n`)
    if (++sent === events) { if (!hold) res.end(); return }
    timer = setTimeout(tick, startAt + sent * interval - now())
  }
  timer = setTimeout(tick, Math.max(0, startAt - now()))
  res.once('close', () => { clearTimeout(timer); clearInterval(waiting) })
})
server.keepAliveTimeout = 60_000
// Thousands of connections arrive within a second: a longer accept queue than Node's 511.
server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
  const address = server.address() as { port: number }
  process.stdout.write(`${address.port}\n`)
})
process.on('SIGTERM', () => process.exit(0))
