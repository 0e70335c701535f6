// The Node floor: the least any Node reverse proxy does, and so the least it can cost. node:http
// in front of one undici Pool (no connection cap), a request forwarded with undici's own dispatch
// handler and backpressure, one pino access line per request. No routing, no timeouts of its own,
// no outcome, no metrics. side-by-side.ts measures longhaul against it.
//
//   node bench/node-floor.ts --port N --upstream http://127.0.0.1:P [--body-timeout-ms MS]
//
// --body-timeout-ms: undici's bodyTimeout (0 = off), the way a Node proxy without a Deadline of
// its own cuts a silent stream. Prints `listening PORT` on stderr when ready.
import http from 'node:http'
import pino from 'pino'
import { Pool, type Dispatcher } from 'undici'
import { comparedProxyOptions } from './lib.ts'

const args = comparedProxyOptions()

const pool = new Pool(args.upstream, { connections: null, pipelining: 1, headersTimeout: 0, bodyTimeout: args.bodyTimeoutMs })
const log = pino({ base: null }, pino.destination({ dest: 1, sync: false }))
const HOP_BY_HOP = ['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'te', 'upgrade']

const server = http.createServer((req, res) => {
  const startedAt = performance.now()
  const headers = req.headers
  for (const name of HOP_BY_HOP) delete headers[name]
  const hasBody = req.headers['content-length'] !== undefined
  let ended = false
  const done = (status: number): void => {
    ended = true
    log.info({ method: req.method, path: req.url, status, durationMs: Math.round(performance.now() - startedAt) }, 'access')
  }
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart (controller) {
      res.once('close', () => { if (!ended) controller.abort(new Error('client went away')) })
    },
    onResponseStart (_controller, status, responseHeaders) {
      for (const name of HOP_BY_HOP) delete responseHeaders[name]
      res.writeHead(status, responseHeaders as http.OutgoingHttpHeaders)
      if (responseHeaders['content-length'] === undefined) res.flushHeaders()
    },
    onResponseData (controller, chunk) {
      if (!res.write(chunk)) {
        controller.pause()
        res.once('drain', () => controller.resume())
      }
    },
    onResponseEnd () {
      res.end()
      done(res.statusCode)
    },
    onResponseError (_controller, err) {
      if (ended) return
      // After the headers, the response is cut (no final chunk), never ended cleanly.
      if (res.headersSent) res.destroy()
      else res.writeHead(502).end()
      done(502)
      void err
    }
  }
  pool.dispatch({ path: req.url ?? '/', method: req.method ?? 'GET', headers: headers as Record<string, string>, body: hasBody ? req : null }, handler)
})
server.keepAliveTimeout = 620_000
server.headersTimeout = 30_000
server.requestTimeout = 0
server.listen({ port: args.port, host: '127.0.0.1', backlog: 4096 }, () => {
  process.stderr.write(`listening ${(server.address() as { port: number }).port}\n`)
})
process.on('SIGTERM', () => process.exit(0))
