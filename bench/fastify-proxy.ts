// @fastify/http-proxy as side-by-side.ts runs it: a maintained Node reverse proxy on undici, with
// one access line per request (fastify's and reply-from's four lines per request replaced by
// one, as the others write one) and no connection cap (its default caps undici at 128 connections).
//
//   node bench/fastify-proxy.ts --port N --upstream http://127.0.0.1:P [--body-timeout-ms MS]
//
// Prints `listening PORT` on stderr when ready.
import Fastify from 'fastify'
import proxy from '@fastify/http-proxy'
import { comparedProxyOptions } from './lib.ts'

const args = comparedProxyOptions()

const app = Fastify({ logger: { base: null }, disableRequestLogging: true, keepAliveTimeout: 620_000, requestTimeout: 0 })
app.addHook('onResponse', (request, reply, done) => {
  request.log.info({ method: request.method, path: request.url, status: reply.statusCode, durationMs: Math.round(reply.elapsedTime) }, 'access')
  done()
})
await app.register(proxy, {
  upstream: args.upstream,
  // reply-from's two lines per request ('fetching from remote server', 'response received')
  disableRequestLogging: true,
  undici: { connections: null, pipelining: 1, headersTimeout: 0, bodyTimeout: args.bodyTimeoutMs } as never
})
await app.listen({ port: args.port, host: '127.0.0.1', backlog: 4096 })
process.stderr.write(`listening ${(app.server.address() as { port: number }).port}\n`)
process.on('SIGTERM', () => process.exit(0))
