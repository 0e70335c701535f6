// The demo upstream's WebSocket echo (`GET /ws`): the RFC 6455 opening handshake on Node's own
// `upgrade` event, then every data frame sent back as it came (text or binary, fragments kept),
// pings answered with pongs, a close answered with a close. Enough to test a tunnel end to end;
// no extensions (permessage-deflate is not negotiated), so frames pass through unchanged.
import { createHash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'

/** RFC 6455 §1.3: the GUID appended to Sec-WebSocket-Key before hashing. */
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

export function acceptKey (key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64')
}

export interface EchoSession {
  /** Payload bytes received and sent in data frames. */
  bytesIn: number
  bytesOut: number
  /** A close frame was received (the client closed the session, not just the connection). */
  closeReceived: boolean
}

/** Writes the 101 and echoes frames until the connection closes. False when the handshake is invalid. */
export function serveEcho (req: IncomingMessage, socket: Duplex, head: Buffer, session: EchoSession): boolean {
  const key = req.headers['sec-websocket-key']
  if (typeof key !== 'string' || req.headers['sec-websocket-version'] !== '13') return false
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`)
  let buffered = head
  const onData = (chunk: Buffer): void => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
    for (;;) {
      const frame = parseFrame(buffered)
      if (frame === null) return
      buffered = buffered.subarray(frame.size)
      if (frame.opcode === 0x8) {
        session.closeReceived = true
        socket.end(encodeFrame(true, 0x8, frame.payload))
        return
      }
      if (frame.opcode === 0x9) socket.write(encodeFrame(true, 0xa, frame.payload))
      else if (frame.opcode <= 0x2) {
        session.bytesIn += frame.payload.length
        session.bytesOut += frame.payload.length
        socket.write(encodeFrame(frame.fin, frame.opcode, frame.payload))
      }
    }
  }
  socket.on('data', onData)
  // Node's HTTP server allows half-open sockets: a peer's FIN alone would leave this one open.
  socket.once('end', () => socket.end())
  if (head.length > 0) onData(Buffer.alloc(0))
  return true
}

interface Frame {
  fin: boolean
  opcode: number
  payload: Buffer
  /** Bytes the frame took in the buffer. */
  size: number
}

/** One frame from the front of `buf` (RFC 6455 §5.2), unmasked; null when it is not all there. */
function parseFrame (buf: Buffer): Frame | null {
  if (buf.length < 2) return null
  const fin = (buf[0]! & 0x80) !== 0
  const opcode = buf[0]! & 0x0f
  const masked = (buf[1]! & 0x80) !== 0
  let length = buf[1]! & 0x7f
  let offset = 2
  if (length === 126) {
    if (buf.length < 4) return null
    length = buf.readUInt16BE(2)
    offset = 4
  } else if (length === 127) {
    if (buf.length < 10) return null
    length = Number(buf.readBigUInt64BE(2))
    offset = 10
  }
  const maskAt = offset
  if (masked) offset += 4
  if (buf.length < offset + length) return null
  const payload = Buffer.from(buf.subarray(offset, offset + length))
  if (masked) for (let i = 0; i < payload.length; i++) payload[i]! ^= buf[maskAt + (i & 3)]!
  return { fin, opcode, payload, size: offset + length }
}

/** A server frame: never masked (RFC 6455 §5.1). */
function encodeFrame (fin: boolean, opcode: number, payload: Buffer): Buffer {
  const first = (fin ? 0x80 : 0) | opcode
  let header: Buffer
  if (payload.length < 126) {
    header = Buffer.from([first, payload.length])
  } else if (payload.length < 65536) {
    header = Buffer.alloc(4)
    header[0] = first
    header[1] = 126
    header.writeUInt16BE(payload.length, 2)
  } else {
    header = Buffer.alloc(10)
    header[0] = first
    header[1] = 127
    header.writeBigUInt64BE(BigInt(payload.length), 2)
  }
  return Buffer.concat([header, payload])
}
