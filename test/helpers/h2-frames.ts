// HTTP/2 frames written by hand (RFC 9113 §4, §6; HPACK RFC 7541 literals only), for attacks a
// well-behaved client library will not send: more streams than SETTINGS_MAX_CONCURRENT_STREAMS,
// thousands of HEADERS + RST_STREAM pairs in one write. Server frames are parsed for their type,
// flags and stream only (no HPACK decoding).
import net from 'node:net'
import { EventEmitter } from 'node:events'

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 } as const
const END_STREAM = 0x1
const END_HEADERS = 0x4
const ACK = 0x1
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

export interface Frame { type: number, flags: number, streamId: number, payload: Buffer }

function frame (type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9)
  head.writeUIntBE(payload.length, 0, 3)
  head[3] = type
  head[4] = flags
  head.writeUInt32BE(streamId & 0x7fffffff, 5)
  return Buffer.concat([head, payload])
}

/** An HPACK string literal, no Huffman (lengths below 127). */
function hpackString (text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1')
  if (bytes.length >= 127) throw new Error('hpackString: keep test header values under 127 bytes')
  return Buffer.concat([Buffer.from([bytes.length]), bytes])
}

/** A literal field without indexing, new name (RFC 7541 §6.2.2). */
function literal (name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00]), hpackString(name), hpackString(value)])
}

/** A request HEADERS frame (END_HEADERS; END_STREAM unless `body`). */
export function headersFrame (streamId: number, path: string, fields: Record<string, string> = {}, options: { body?: boolean, authority?: string } = {}): Buffer {
  const block = Buffer.concat([
    Buffer.from([0x82, 0x86]), // :method GET, :scheme http (static table 2, 6)
    Buffer.from([0x04]), hpackString(path), // :path, name from static table 4
    Buffer.from([0x01]), hpackString(options.authority ?? 'gw.test'), // :authority, static table 1
    ...Object.entries(fields).map(([n, v]) => literal(n, v))
  ])
  return frame(FRAME.HEADERS, END_HEADERS | (options.body === true ? 0 : END_STREAM), streamId, block)
}

export function rstStreamFrame (streamId: number, code: number): Buffer {
  const payload = Buffer.alloc(4)
  payload.writeUInt32BE(code)
  return frame(FRAME.RST_STREAM, 0, streamId, payload)
}

export interface RawH2Session {
  socket: net.Socket
  /** Every frame the server sent, in order. */
  frames: Frame[]
  events: EventEmitter<{ frame: [Frame] }>
  /** Resolves with the first server frame (already received or to come) that matches. */
  waitFrame: (match: (f: Frame) => boolean, timeoutMs?: number) => Promise<Frame>
  closed: Promise<void>
}

/** A cleartext HTTP/2 connection with prior knowledge: preface and an empty SETTINGS sent, the server's SETTINGS acknowledged. */
export async function rawH2Session (url: string): Promise<RawH2Session> {
  const { hostname, port } = new URL(url)
  const socket = net.connect(Number(port), hostname)
  socket.on('error', () => {})
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  const frames: Frame[] = []
  const events = new EventEmitter<{ frame: [Frame] }>()
  let buffered = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk])
    while (buffered.length >= 9) {
      const length = buffered.readUIntBE(0, 3)
      if (buffered.length < 9 + length) break
      const f: Frame = { type: buffered[3]!, flags: buffered[4]!, streamId: buffered.readUInt32BE(5) & 0x7fffffff, payload: buffered.subarray(9, 9 + length) }
      buffered = buffered.subarray(9 + length)
      if (f.type === FRAME.SETTINGS && (f.flags & ACK) === 0) socket.write(frame(FRAME.SETTINGS, ACK, 0, Buffer.alloc(0)))
      frames.push(f)
      events.emit('frame', f)
    }
  })
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(0))]))
  const waitFrame = (match: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> => {
    const seen = frames.find(match)
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const onFrame = (f: Frame): void => {
        if (!match(f)) return
        clearTimeout(timer)
        events.off('frame', onFrame)
        resolve(f)
      }
      const timer = setTimeout(() => {
        events.off('frame', onFrame)
        reject(new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(frames.map((f) => [f.type, f.flags, f.streamId]).slice(-20))}`))
      }, timeoutMs)
      events.on('frame', onFrame)
    })
  }
  await waitFrame((f) => f.type === FRAME.SETTINGS && (f.flags & ACK) === 0)
  return { socket, frames, events, waitFrame, closed }
}

/** The error code of a RST_STREAM or GOAWAY frame. */
export function errorCode (f: Frame): number {
  return f.type === FRAME.GOAWAY ? f.payload.readUInt32BE(4) : f.payload.readUInt32BE(0)
}
