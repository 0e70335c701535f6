// Header rules of DESIGN.md §5, built once: the hop-by-hop set, forwarding headers, the request
// id, the client deadline, and the stream hints on event streams.
import { randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http'
import { isEventStream } from './sse.ts'

// RFC 9110 §7.6.1: hop-by-hop fields, plus the Proxy-* family and x-longhaul-timeout-ms, which the
// gateway rewrites itself.
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade',
  // Expect: 100-continue is answered by the gateway's own server; undici refuses to send it.
  'expect'
])
// A client's `Connection: host` must not remove what the gateway itself relies on and promises to
// pass unchanged: the Host (routing, X-Forwarded-Host) and the body's framing.
const NEVER_HOP_BY_HOP = new Set(['host', 'content-length'])
const GATEWAY_OWNED = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-longhaul-timeout-ms', 'x-request-id'])

export const CLIENT_DEADLINE_HEADER = 'x-longhaul-timeout-ms'
/** The OpenAI and Anthropic SDKs' own timeout, in seconds (the client's wait for the response headers when x-longhaul-timeout-ms is absent). */
export const SDK_TIMEOUT_HEADER = 'x-stainless-timeout'
/** The SDKs' attempt number: 0 for the first try, 1 for their first retry, … */
export const SDK_RETRY_COUNT_HEADER = 'x-stainless-retry-count'

/** The client's attempt number when an SDK sent a sane one, else null (it is only logged and counted). */
export function clientRetryCountOf (headers: IncomingHttpHeaders): number | null {
  const value = headers[SDK_RETRY_COUNT_HEADER]
  return typeof value === 'string' && /^\d{1,6}$/.test(value) ? Number(value) : null
}
const MAX_REQUEST_ID = 200

/** The client's x-request-id when it is sane, otherwise a fresh one. */
export function requestIdOf (headers: IncomingHttpHeaders): string {
  const given = headers['x-request-id']
  return typeof given === 'string' && given.length > 0 && given.length <= MAX_REQUEST_ID && /^[\x21-\x7e]+$/.test(given) ? given : randomUUID()
}

function connectionTokens (value: string | string[] | undefined): Set<string> | null {
  if (value === undefined) return null
  // The common `Connection: keep-alive` names only a field that is hop-by-hop anyway: no set to build.
  if (typeof value === 'string' && value.length === 10 && value.toLowerCase() === 'keep-alive') return null
  const tokens = new Set<string>()
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const token = part.trim().toLowerCase()
    if (token !== '') tokens.add(token)
  }
  return tokens
}

/** X-Forwarded-Proto of a request: https when its client socket is TLS (on HTTP/2 too, through Node's socket proxy). */
export function protoOf (req: IncomingMessage): 'http' | 'https' {
  return (req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http'
}

export interface ForwardInfo {
  requestId: string
  clientIp: string
  proto: 'http' | 'https'
  /** Budget left in ms for the upstream; null = unlimited (header absent). */
  remainingMs: number | null
}

/** Request headers for the upstream, as a flat [name, value, …] list (repeated fields kept). */
export function upstreamRequestHeaders (req: IncomingMessage, info: ForwardInfo): string[] {
  const raw = req.rawHeaders
  const named = connectionTokens(req.headers.connection)
  if (named !== null) for (const name of NEVER_HOP_BY_HOP) named.delete(name)
  const out: string[] = []
  let forwardedFor: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase()
    if (HOP_BY_HOP.has(name) || (named !== null && named.has(name))) {
      if (name === 'te' && raw[i + 1]!.toLowerCase().includes('trailers')) out.push('te', 'trailers')
      continue
    }
    if (GATEWAY_OWNED.has(name)) {
      if (name === 'x-forwarded-for') forwardedFor = forwardedFor === undefined ? raw[i + 1]! : `${forwardedFor}, ${raw[i + 1]!}`
      continue
    }
    out.push(raw[i]!, raw[i + 1]!)
  }
  out.push('x-forwarded-for', forwardedFor === undefined ? info.clientIp : `${forwardedFor}, ${info.clientIp}`)
  out.push('x-forwarded-proto', info.proto)
  if (req.headers.host !== undefined) out.push('x-forwarded-host', req.headers.host)
  out.push('x-request-id', info.requestId)
  if (info.remainingMs !== null) out.push(CLIENT_DEADLINE_HEADER, String(info.remainingMs))
  return out
}

/** Response headers for the client: hop-by-hop removed, request id added, stream hints on event streams. */
export function downstreamResponseHeaders (headers: IncomingHttpHeaders, requestId: string): OutgoingHttpHeaders {
  const named = connectionTokens(headers.connection)
  const out: OutgoingHttpHeaders = {}
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || (named !== null && named.has(name))) continue
    out[name] = headers[name]
  }
  out['x-request-id'] = requestId
  if (isEventStream(headers['content-type'])) {
    // Outer proxies and CDNs must neither buffer nor compress a stream (nginx honours X-Accel-Buffering).
    out['x-accel-buffering'] = 'no'
    const cache = headers['cache-control']
    out['cache-control'] = cache === undefined ? 'no-transform' : (/no-transform/i.test(String(cache)) ? cache : `${String(cache)}, no-transform`)
  }
  return out
}
