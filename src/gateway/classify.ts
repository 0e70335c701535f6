// The one failure taxonomy (STYLE.md §1.5): an upstream error, and whether the response had
// started, map to a Failure: its kind (what the retry policy and outlier ejection decide on),
// whether it is the keep-alive race, and the Ending the request gets if it is not retried. From
// error codes and classes, never from messages.
import { errors } from 'undici'
import type { FailureKind } from '../upstream/retry.ts'
import { failedToConnect } from '../upstream/endpoint.ts'
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

/**
 * The reason a try is aborted when a retry replaces it (a status the policy retries, a held
 * response that failed before its first event): no outcome,
 * the request goes on. Its callbacks no longer reach the request, so nothing reads it but undici.
 */
export class TryReplaced extends Error {
  readonly code = 'LONGHAUL_TRY_REPLACED'
  constructor (what: string) {
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    super(`try replaced by a retry after ${what}`)
    Error.stackTraceLimit = limit
  }
}

/** No connection was made: nothing reached a backend. */
const UNAVAILABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'EHOSTDOWN'])
const CONNECT_TIMEOUT = new Set(['LONGHAUL_CONNECT_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT'])
/** OpenSSL's certificate verification codes (Node's tls gives them as the error's code). */
const CERTIFICATE = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE', 'CERT_REVOKED', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'INVALID_CA', 'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE', 'HOSTNAME_MISMATCH'
])
const RESET = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED', 'ECONNABORTED'])
const PROTOCOL = new Set(['UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_RES_EXCEEDED_MAX_SIZE', 'UND_ERR_HEADERS_OVERFLOW', 'UND_ERR_INFO'])

export interface Failure {
  readonly kind: FailureKind
  /** The keep-alive race: a reused connection reset before any response byte (isStaleConnection). */
  readonly stale: boolean
  /** The error's code (or message), for the outlier log. */
  readonly reason: string
  /** How the request ends if this failure is its last. */
  readonly ending: Ending
}

export function classifyFailure (err: Error, responseStarted: boolean): Failure {
  const code = (err as { code?: string }).code ?? ''
  const reason = code === '' ? err.message : code
  if (err instanceof GatewayAbort) return { kind: 'other', stale: false, reason, ending: err.ending }
  if (CONNECT_TIMEOUT.has(code)) {
    const limitMs = (err as { limitMs?: number }).limitMs
    return { kind: 'connect', stale: false, reason, ending: limitMs === undefined ? { outcome: 'connect_timeout' } : { outcome: 'connect_timeout', limitMs } }
  }
  if (UNAVAILABLE.has(code)) return { kind: 'connect', stale: false, reason, ending: { outcome: 'upstream_unavailable', detail: code } }
  // A TLS handshake that failed (a certificate that does not verify, https:// to a plain HTTP
  // port): no connection was made, nothing reached a backend, so it is no reset. Only an error
  // of the connect itself: the same codes on a connection that carried a request are resets.
  if (failedToConnect(err) && (CERTIFICATE.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_'))) {
    return { kind: 'connect', stale: false, reason, ending: { outcome: 'upstream_unavailable', detail: `TLS handshake failed: ${code} (${err.message})` } }
  }
  // undici (8.12) builds HTTPParserError's code from a reverse lookup its constants do not have, so
  // the code is undefined: the error's class says it instead.
  if (code.startsWith('HPE_') || PROTOCOL.has(code) || err instanceof errors.HTTPParserError) return { kind: 'other', stale: false, reason, ending: { outcome: 'upstream_protocol_error', detail: reason } }
  // undici refuses to send what is not valid HTTP (two Host fields, a header value it rejects):
  // the client's request is at fault, not the upstream, which never saw it.
  if (code === 'UND_ERR_INVALID_ARG') return { kind: 'other', stale: false, reason, ending: { outcome: 'bad_request', detail: `the request cannot be forwarded (${err.message})` } }
  // A dispatch on a pool already closed (a reload retired its upstream, a DNS answer removed its
  // endpoint): nothing reached a backend, so it is no reset. It is retried like a connect failure
  // (re-picked elsewhere); a pool is only closed once idle, so this is a race, not the rule.
  if (!responseStarted && (err instanceof errors.ClientClosedError || err instanceof errors.ClientDestroyedError)) {
    return { kind: 'connect', stale: false, reason, ending: { outcome: 'upstream_unavailable', detail: 'the endpoint\'s connection pool was closed (a reload or a DNS answer removed it)' } }
  }
  if (RESET.has(code)) {
    const detail = responseStarted ? 'after the response started' : 'before any response byte'
    return { kind: 'reset', stale: !responseStarted && isStaleConnection(err), reason, ending: { outcome: 'upstream_reset', detail } }
  }
  return { kind: 'other', stale: false, reason, ending: { outcome: 'upstream_reset', detail: reason } }
}

/**
 * A reset before any response byte on a connection that had carried an earlier response: the
 * keep-alive race (the backend closed the idle connection as the request went out). undici's
 * "other side closed" error carries the socket's byte counts; a write into a connection the peer
 * already closed shows as ECONNRESET or EPIPE, which carry them only because the endpoint's
 * connector notes them (upstream/endpoint.ts). A reset on a fresh connection read nothing: the
 * backend took the request and failed, which is no race, and only the retry policy may retry it.
 */
function isStaleConnection (err: Error): boolean {
  const code = (err as { code?: string }).code
  if (code !== 'ECONNRESET' && code !== 'EPIPE' && code !== 'UND_ERR_SOCKET') return false
  const socket = (err as { socket?: { bytesRead?: number } }).socket
  return socket !== undefined && (socket.bytesRead ?? 0) > 0
}
