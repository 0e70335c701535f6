// A bounded lingering close for an HTTP/1.1 connection answered before its request body was read
// (an error, a 404, a cut before the upstream read it). Node would read and drop the rest of the
// body to keep the connection, with no bound but keep-alive idle per gap; closing at once instead
// makes the kernel answer the unread bytes with a reset that can destroy the response before the
// client reads it. So: the response says `Connection: close`, the gateway half-closes after it,
// and keeps reading (and dropping) what the client still sends for at most `totalMs`, and no
// longer than `idleMs` of silence (nginx: lingering_close, lingering_time, lingering_timeout).
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

export interface LingerLimits {
  /** downstream.lingerTimeout */
  readonly totalMs: number
  /** downstream.bodyIdleTimeout: silence that ends the linger early. */
  readonly idleMs: number
}

/**
 * Call before writing the response head: the response gets `Connection: close`, and once it is
 * out, the socket lingers as described above instead of closing at once.
 */
export function lingerAfter (res: ServerResponse, limits: LingerLimits): void {
  res.shouldKeepAlive = false
  const socket = res.socket as (Socket & { destroySoon?: () => void }) | null
  if (socket === null || socket.destroyed) return
  // Node ends a response marked last with socket.destroySoon(): end, then destroy once written.
  // This socket ends the same way but keeps reading until the client is done or a bound is hit.
  socket.destroySoon = function lingeringClose (this: Socket): void {
    if (this.destroyed) return
    const stop = (): void => { this.destroy() }
    const total = setTimeout(stop, limits.totalMs)
    total.unref()
    this.setTimeout(limits.idleMs, stop)
    this.once('end', stop)
    this.once('close', () => clearTimeout(total))
    this.end()
    // The rest of the body is read and dropped, whoever was reading it before.
    res.req.resume()
  }
}
