// A raw TCP client for hostile-input tests: writes exact bytes, keeps every byte it receives
// (so a second response written into a first one shows), and tells when and how the gateway
// closed the connection.
import net from 'node:net'

export interface RawClient {
  socket: net.Socket
  /** Everything received so far, as latin1 text. */
  text: () => string
  /** Resolves once the received text matches; rejects when the connection closes first or on timeout. */
  waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<string>
  /** Resolves with performance.now() when the connection closed (by either side). */
  closed: Promise<number>
  /** How the connection closed: the peer's FIN (end) or a reset (error). */
  endedBy: () => 'fin' | 'reset' | null
}

/** `allowHalfOpen`: keep writing after the gateway's FIN (a client still sending its body). */
export async function rawClient (url: string, options: { allowHalfOpen?: boolean } = {}): Promise<RawClient> {
  const { hostname, port } = new URL(url)
  const socket = net.connect({ port: Number(port), host: hostname, allowHalfOpen: options.allowHalfOpen ?? false })
  let text = ''
  let endedBy: 'fin' | 'reset' | null = null
  const waiters = new Set<() => void>()
  socket.on('data', (d: Buffer) => {
    text += d.toString('latin1')
    for (const check of waiters) check()
  })
  socket.on('end', () => { endedBy ??= 'fin' })
  socket.on('error', () => { endedBy ??= 'reset' })
  const closed = new Promise<number>((resolve) => socket.once('close', () => {
    for (const check of waiters) check()
    resolve(performance.now())
  }))
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  return {
    socket,
    text: () => text,
    endedBy: () => endedBy,
    closed,
    waitFor: (pattern, timeoutMs = 5000) => new Promise((resolve, reject) => {
      const check = (): void => {
        if (pattern.test(text)) {
          finish()
          resolve(text)
        } else if (socket.destroyed) {
          finish()
          reject(new Error(`closed before ${String(pattern)} was received; got ${JSON.stringify(text.slice(0, 800))}`))
        }
      }
      const finish = (): void => { clearTimeout(timer); waiters.delete(check) }
      const timer = setTimeout(() => {
        waiters.delete(check)
        reject(new Error(`no ${String(pattern)} within ${timeoutMs} ms; got ${JSON.stringify(text.slice(0, 800))}`))
      }, timeoutMs)
      waiters.add(check)
      check()
    })
  }
}

/** Counts status lines in what a client received: more than one on a connection that carried one request is a smuggled response. */
export function statusLines (text: string): string[] {
  return text.match(/HTTP\/1\.1 \d{3}[^\r\n]*/g) ?? []
}
