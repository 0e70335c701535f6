// The closed outcome vocabulary (DESIGN.md §4). One row per outcome: the same code appears in
// the error body, the x-longhaul-error header, the access log `outcome` and the metric label.
// Outcome names are public: never rename or reuse one. Adding one is a one-place change here.
import { formatDuration } from '../config/units.ts'

interface OutcomeSpec {
  /** Status of a gateway-made response; for client-side endings, the status logged (499). */
  readonly status: number
  /** A more precise status for some requests of this outcome, by the Ending's `variant`. */
  readonly variants?: Readonly<Record<string, number>>
  /** RFC 9209 Proxy-Status error type; null when the gateway makes no error response. */
  readonly proxyStatus: string | null
  /** One human sentence; `{limit}` is replaced by the limit's value. */
  readonly message: string
  /**
   * What the error response tells clients about repeating the request (the SDKs of OpenAI and
   * Anthropic obey `x-should-retry` over their own status rules): `never` when the upstream
   * already spent the time and another try would spend it again; `later` (with Retry-After) when
   * another try soon can succeed. Absent: the client's own rules.
   */
  readonly retry?: 'never' | 'later'
  readonly connectionClose?: boolean
}

export const OUTCOMES = {
  ok: { status: 200, proxyStatus: null, message: 'finished cleanly' },
  no_route: { status: 404, proxyStatus: 'destination_not_found', message: 'no route matches this request' },
  // RFC 6585 §5: 431 Request Header Fields Too Large for a head over downstream.maxHeaderSize or
  // maxHeaderCount; RFC 9110 §15.6.6: 505 for an HTTP major version the listener does not speak.
  bad_request: { status: 400, proxyStatus: 'http_request_error', message: 'the request is malformed', variants: { head_too_large: 431, version_not_supported: 505 } },
  request_headers_timeout: { status: 408, proxyStatus: 'http_request_error', message: 'the request head did not arrive within downstream.headersTimeout ({limit})', connectionClose: true },
  request_body_timeout: { status: 408, proxyStatus: 'http_request_error', message: 'the request body was silent longer than downstream.bodyIdleTimeout ({limit})', connectionClose: true },
  payload_too_large: { status: 413, proxyStatus: 'http_request_error', message: 'the request body is larger than downstream.maxBodySize', connectionClose: true },
  client_aborted: { status: 499, proxyStatus: null, message: 'the client went away; the upstream request was aborted' },
  client_send_timeout: { status: 499, proxyStatus: null, message: 'the client accepted no response bytes for downstream.sendTimeout ({limit})' },
  // HTTP/2: a stream past the session's concurrent stream limit gets RST_STREAM REFUSED_STREAM
  // (RFC 9113 §5.1.2) and no response; 503 is what the access line logs.
  too_many_streams: { status: 503, proxyStatus: null, message: 'the client\'s HTTP/2 session already had downstream.maxConcurrentStreams streams open; the stream was refused (REFUSED_STREAM, safe to retry)' },
  overloaded: { status: 503, proxyStatus: 'connection_limit_reached', message: 'the upstream is at its concurrency limit', retry: 'later' },
  upstream_unavailable: { status: 503, proxyStatus: 'destination_unavailable', message: 'no upstream endpoint could be reached', retry: 'later' },
  connect_timeout: { status: 503, proxyStatus: 'connection_timeout', message: 'connecting to the upstream took longer than connectTimeout ({limit})' },
  first_byte_timeout: { status: 504, proxyStatus: 'http_response_timeout', message: 'the upstream sent no response headers within firstByte ({limit})', retry: 'never' },
  stream_idle_timeout: { status: 504, proxyStatus: 'http_response_timeout', message: 'the upstream response was silent longer than streamIdle ({limit})' },
  // A 504 while sse.holdHeaders holds the headers; after they went out, like stream_idle_timeout, a cut.
  first_event_timeout: { status: 504, proxyStatus: 'http_response_timeout', message: 'the upstream sent no event with an answer within firstEvent ({limit}) after its response headers', retry: 'never' },
  // Only while sse.holdHeaders holds the headers: otherwise the record goes to the client as sent.
  upstream_error_event: { status: 503, proxyStatus: 'destination_unavailable', message: 'the upstream answered with an error record before its first event', retry: 'later' },
  request_timeout: { status: 504, proxyStatus: 'http_response_timeout', message: 'the exchange took longer than the route\'s request timeout ({limit})', retry: 'never' },
  client_deadline_exceeded: { status: 504, proxyStatus: 'http_response_timeout', message: 'the client\'s own deadline ({limit}, its x-longhaul-timeout-ms or its SDK\'s X-Stainless-Timeout) ran out', retry: 'never' },
  upstream_reset: { status: 502, proxyStatus: 'connection_terminated', message: 'the upstream closed or reset the connection' },
  upstream_protocol_error: { status: 502, proxyStatus: 'http_protocol_error', message: 'the upstream response could not be parsed' },
  draining: { status: 503, proxyStatus: 'destination_unavailable', message: 'the gateway is shutting down', connectionClose: true, retry: 'later' },
  drain_timeout: { status: 503, proxyStatus: 'destination_unavailable', message: 'the gateway shut down before the request finished (drain.timeout {limit})' },
  // Only an open tunnel (after its 101) can be idle, so the access line keeps the 101: like
  // stream_idle_timeout after headers, the 504 here is never sent.
  tunnel_idle_timeout: { status: 504, proxyStatus: 'connection_read_timeout', message: 'the tunnel was silent in both directions longer than tunnelIdle ({limit})' },
  // The gateway's own code threw on the request path (a defect): the request ends, the process
  // lives on, and the error is logged; neither the upstream nor the client is blamed.
  internal_error: { status: 500, proxyStatus: 'proxy_internal_error', message: 'the gateway failed while handling the request (its log has the error)' }
} as const satisfies Record<string, OutcomeSpec>

export type Outcome = keyof typeof OUTCOMES
export const OUTCOME_NAMES = Object.keys(OUTCOMES) as Outcome[]

/** Everything known about how a request ended, carried into the error body, log and metrics. */
export interface Ending {
  readonly outcome: Outcome
  /** The limit that fired, in ms, when a limit fired. */
  readonly limitMs?: number | undefined
  /** A detail for the message (the parse error, the bad header), never a secret. */
  readonly detail?: string | undefined
  /** Picks a more precise status from the outcome's `variants` (the outcome stays the same). */
  readonly variant?: string | undefined
}

/** The status of the gateway's response for this ending. */
export function responseStatus (ending: Ending): number {
  const spec: OutcomeSpec = OUTCOMES[ending.outcome]
  return (ending.variant === undefined ? undefined : spec.variants?.[ending.variant]) ?? spec.status
}

export function describe (ending: Ending): string {
  const spec: OutcomeSpec = OUTCOMES[ending.outcome]
  const sentence = spec.message.replace('{limit}', ending.limitMs === undefined ? '?' : formatDuration(ending.limitMs))
  return ending.detail === undefined ? sentence : `${sentence}: ${ending.detail}`
}

export interface ErrorContext {
  route: string | null
  upstream: string | null
  requestId: string
  elapsedMs: number
}

/**
 * The JSON document of a gateway-made error: the body of an error response and the data of the
 * SSE error record. Its shape is the one both SDK families raise as their API error: OpenAI's
 * `{"error":{…}}` (`code`, `type`, `message`) and Anthropic's `{"type":"error","error":{…}}`.
 */
export interface ErrorDocument {
  type: 'error'
  error: {
    type: Outcome
    code: Outcome
    message: string
    route: string | null
    upstream: string | null
    requestId: string
    limitMs?: number
    elapsedMs: number
  }
}

export function errorDocument (ending: Ending, ctx: ErrorContext): ErrorDocument {
  return {
    type: 'error',
    error: {
      type: ending.outcome,
      code: ending.outcome,
      message: describe(ending),
      route: ctx.route,
      upstream: ctx.upstream,
      requestId: ctx.requestId,
      ...(ending.limitMs === undefined ? {} : { limitMs: ending.limitMs }),
      elapsedMs: ctx.elapsedMs
    }
  }
}

/** RFC 9209 Proxy-Status for a gateway-made error: `longhaul; error=…; details="…"`. */
export function proxyStatusHeader (ending: Ending, elapsedMs: number): string | null {
  const type: string | null = (OUTCOMES[ending.outcome] as OutcomeSpec).proxyStatus
  if (type === null) return null
  const details = ending.limitMs === undefined ? ending.outcome : `${ending.outcome} after ${elapsedMs}ms`
  return `longhaul; error=${type}; details="${details}"`
}

export function outcomeSpec (outcome: Outcome): OutcomeSpec {
  return OUTCOMES[outcome]
}
