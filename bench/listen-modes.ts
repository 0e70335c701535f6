// Helper of bench/workers.ts: N cluster workers answering `200 ok` on one port, sharing it the
// way node:cluster does by default (the primary accepts and hands connections out in turn, `rr`)
// or each binding its own socket with SO_REUSEPORT (the kernel spreads connections, `reuseport`).
// On SIGTERM the primary prints each worker's request and connection counts as JSON on stdout and exits.
//
//   node bench/listen-modes.ts --mode rr|reuseport --workers 2 --port P
import cluster from 'node:cluster'
import http from 'node:http'
import { parseArgs } from 'node:util'

const { values: args } = parseArgs({ options: { mode: { type: 'string', default: 'rr' }, workers: { type: 'string', default: '2' }, port: { type: 'string', default: '0' } } })
const port = Number(args.port)

if (cluster.isPrimary) {
  cluster.schedulingPolicy = cluster.SCHED_RR
  const workers = Array.from({ length: Number(args.workers) }, () => cluster.fork())
  let listening = 0
  for (const w of workers) w.once('message', () => { if (++listening === workers.length) process.stderr.write('listening\n') })
  process.on('SIGTERM', () => {
    const counts: Array<{ requests: number, connections: number }> = []
    for (const w of workers) {
      w.once('message', (m: { requests: number, connections: number }) => {
        counts.push(m)
        if (counts.length === workers.length) {
          process.stdout.write(`${JSON.stringify({ mode: args.mode, requests: counts.map((c) => c.requests), connections: counts.map((c) => c.connections) })}\n`)
          for (const x of workers) x.process.kill('SIGKILL')
          process.exit(0)
        }
      })
      w.send('report')
    }
  })
} else {
  let requests = 0
  let connections = 0
  const server = http.createServer((_req, res) => { requests++; res.end('ok\n') })
  server.on('connection', () => { connections++ })
  server.keepAliveTimeout = 65_000
  // exclusive: this worker binds its own socket instead of asking the primary for a shared one.
  server.listen(args.mode === 'reuseport' ? { port, host: '127.0.0.1', reusePort: true, exclusive: true } : { port, host: '127.0.0.1' })
  server.on('listening', () => process.send?.({ listening: true }))
  process.on('message', () => process.send?.({ requests, connections }))
  process.on('SIGTERM', () => {})
}
