// An HTTP/2 upstream that resets a stream mid-body (RST_STREAM INTERNAL_ERROR, never END_STREAM):
// the cut is never a clean end. The backend writes its frames by hand, because Node's own
// http2 server ends a stream whose request body is done before it resets it.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { startGateway, type RunningGateway } from './helpers/gateway.ts'
import { FRAME } from './helpers/h2-frames.ts'
import { sseRecords } from './helpers/faults.ts'

const NGHTTP2_INTERNAL_ERROR = 2

function frame (type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9)
  head.writeUIntBE(payload.length, 0, 3)
  head[3] = type
  head[4] = flags
  head.writeUInt32BE(streamId, 5)
  return Buffer.concat([head, payload])
}

// HPACK: `:status 200` from the static table (index 8); content-type (name index 31) as a literal.
const CONTENT_TYPE = Buffer.from('text/event-stream')
const RESPONSE_HEADERS = Buffer.concat([Buffer.from([0x88, 0x0f, 0x10, CONTENT_TYPE.length]), CONTENT_TYPE])
const END_HEADERS = 0x4
const ACK = 0x1

let backend: net.Server
let gw: RunningGateway

before(async () => {
  // h2c with prior knowledge: SETTINGS both ways, then for each request HEADERS, one event, and
  // RST_STREAM INTERNAL_ERROR once the gateway has the event.
  backend = net.createServer((socket) => {
    socket.on('error', () => {})
    let pending = Buffer.alloc(0)
    let prefaceSeen = false
    socket.write(frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(0)))
    socket.on('data', (data: Buffer) => {
      pending = Buffer.concat([pending, data])
      if (!prefaceSeen) {
        if (pending.length < 24) return
        pending = pending.subarray(24)
        prefaceSeen = true
      }
      while (pending.length >= 9) {
        const length = pending.readUIntBE(0, 3)
        if (pending.length < 9 + length) return
        const type = pending[3]!
        const flags = pending[4]!
        const streamId = pending.readUInt32BE(5) & 0x7fffffff
        pending = pending.subarray(9 + length)
        if (type === FRAME.SETTINGS && (flags & ACK) === 0) socket.write(frame(FRAME.SETTINGS, ACK, 0, Buffer.alloc(0)))
        if (type === FRAME.HEADERS) {
          socket.write(frame(FRAME.HEADERS, END_HEADERS, streamId, RESPONSE_HEADERS))
          socket.write(frame(FRAME.DATA, 0, streamId, Buffer.from('data: one\n\n')))
          const code = Buffer.alloc(4)
          code.writeUInt32BE(NGHTTP2_INTERNAL_ERROR)
          setTimeout(() => socket.write(frame(FRAME.RST_STREAM, 0, streamId, code)), 100)
        }
      }
    })
  })
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve))
  gw = await startGateway([
    'listen: [{ address: 127.0.0.1:0 }]',
    'admin: { address: 127.0.0.1:0 }',
    `upstreams: { h2: { endpoints: [http://127.0.0.1:${(backend.address() as AddressInfo).port}], protocol: h2 } }`,
    'routes:',
    '  - { name: h2, match: { pathPrefix: / }, upstream: h2 }'
  ].join('\n'))
})

after(async () => {
  await gw?.stop()
  await new Promise<void>((resolve) => backend === undefined ? resolve() : backend.close(() => resolve()))
})

test('a reset after the first event: the event, the error record naming upstream_reset, then a cut (never a clean end)', async () => {
  const res = await request(`${gw.url}/v1/stream`, { headers: { 'x-request-id': 'h2-reset-1' } })
  assert.equal(res.statusCode, 200)
  let body = ''
  const ended = await (async () => {
    try {
      for await (const chunk of res.body) body += chunk.toString()
      return 'clean end'
    } catch {
      return 'cut'
    }
  })()
  assert.equal(ended, 'cut')
  const records = sseRecords(body)
  assert.equal(records[0]!.data, 'one')
  assert.equal(records.at(-1)!.event, 'error')
  assert.match(records.at(-1)!.data, /"code":"upstream_reset"/)
  const line = await gw.accessLine('h2-reset-1')
  assert.equal(line.status, 200)
  assert.equal(line.outcome, 'upstream_reset')
})
