// An upstream's interim responses (103 Early Hints) are not the answer: the final response after
// them is, over HTTP/1.1 and HTTP/2 upstreams alike.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { startGateway, type RunningGateway } from './helpers/gateway.ts'

let h1: net.Server
let h2: http2.Http2Server
let gw: RunningGateway

before(async () => {
  // A raw HTTP/1.1 backend: 103 with a Link, then the 200 on the same connection.
  h1 = net.createServer((socket) => {
    socket.on('error', () => {})
    socket.once('data', () => socket.write('HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'))
  })
  h2 = http2.createServer()
  h2.on('stream', (stream) => {
    stream.additionalHeaders({ ':status': 103, link: '</style.css>; rel=preload' })
    stream.respond({ ':status': 200, 'content-type': 'text/plain' })
    stream.end('hello')
  })
  for (const server of [h1, h2]) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  gw = await startGateway([
    'listen: [{ address: 127.0.0.1:0 }]',
    'admin: { address: 127.0.0.1:0 }',
    'upstreams:',
    `  h1: { endpoints: [http://127.0.0.1:${(h1.address() as AddressInfo).port}] }`,
    `  h2: { endpoints: [http://127.0.0.1:${(h2.address() as AddressInfo).port}], protocol: h2 }`,
    'routes:',
    '  - { name: h1, match: { pathPrefix: /h1/ }, upstream: h1 }',
    '  - { name: h2, match: { pathPrefix: /h2/ }, upstream: h2 }'
  ].join('\n'))
})

after(async () => {
  await gw?.stop()
  await new Promise<void>((resolve) => h1 === undefined ? resolve() : h1.close(() => resolve()))
  await new Promise<void>((resolve) => h2 === undefined ? resolve() : h2.close(() => resolve()))
})

for (const protocol of ['h1', 'h2']) {
  test(`${protocol} upstream: a 103 before the answer is skipped, the 200 and its body go through`, async () => {
    const res = await request(`${gw.url}/${protocol}/page`)
    assert.equal(res.statusCode, 200)
    assert.equal(await res.body.text(), 'hello')
    const line = await gw.accessLine(String(res.headers['x-request-id']))
    assert.equal(line.status, 200)
    assert.equal(line.outcome, 'ok')
    assert.equal(line.bytesOut, 5)
  })
}
