// One function maps an upstream failure to its outcome, from error codes and the phase, never
// from messages (STYLE.md §1.5).
import { errors } from 'undici'
import type { Ending } from './outcome.ts'

/** The reason the gateway gives undici when it aborts an upstream request: the outcome that ended it. */
export class GatewayAbort extends Error {
  readonly code = 'LONGHAUL_ABORTED'
  readonly ending: Ending
  constructor (ending: Ending) {
    // No stack trace: the reason only tells undici's callbacks to stand down, and 2,000 streams
    // cut at once (a drain, an upstream that froze) would pay for 2,000 stack captures.
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    super(`aborted by longhaul: ${ending.outcome}`)
    Error.stackTraceLimit = limit
    this.ending = ending
  }
}

const UNAVAILABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'EHOSTDOWN'])
const RESET = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED', 'ECONNABORTED'])
const PROTOCOL = new Set(['UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_RES_EXCEEDED_MAX_SIZE', 'UND_ERR_HEADERS_OVERFLOW', 'UND_ERR_INFO'])

export function classifyUpstreamError (err: Error, responseStarted: boolean): Ending {
  const code = (err as { code?: string }).code ?? ''
  if (err instanceof GatewayAbort) return err.ending
  if (code === 'LONGHAUL_CONNECT_TIMEOUT') return { outcome: 'connect_timeout', limitMs: (err as unknown as { limitMs: number }).limitMs }
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return { outcome: 'connect_timeout' }
  if (UNAVAILABLE.has(code)) return { outcome: 'upstream_unavailable', detail: code }
  // undici (8.12) builds HTTPParserError's code from a reverse lookup its constants do not have, so
  // the code is undefined: the error's class says it instead.
  if (code.startsWith('HPE_') || PROTOCOL.has(code) || err instanceof errors.HTTPParserError) return { outcome: 'upstream_protocol_error', detail: code === '' ? err.message : code }
  if (RESET.has(code)) return { outcome: 'upstream_reset', detail: responseStarted ? 'after the response started' : 'before any response byte' }
  return { outcome: 'upstream_reset', detail: code === '' ? err.message : code }
}
