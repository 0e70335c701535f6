// Checks of a request head that no route can make acceptable, made before routing, so that a
// client's mistake is its own `bad_request` and never reaches (or is blamed on) an upstream.
// Each refusal keeps the outcome bad_request; its variant picks the status (400, 431, 505).
import type { IncomingMessage } from 'node:http'
import type { Ending } from './outcome.ts'
import { normalisePath } from './path.ts'

export interface HeadRefusal {
  readonly ending: Ending
}

/** What routing and forwarding use of an accepted head. */
export interface AcceptedHead {
  /** The normalised path (no query). */
  readonly path: string
  /** The request target to forward: the normalised path and the query as received. */
  readonly target: string
}

function refuse (variant: 'head_too_large' | 'version_not_supported' | undefined, detail: string): HeadRefusal {
  return { ending: { outcome: 'bad_request', detail, variant } }
}

/**
 * `http1`: the request came on an HTTP/1.1 connection (not an HTTP/2 stream). `maxHeaderCount`:
 * downstream.maxHeaderCount; the listener lets Node keep one field more than that, so a head
 * over the limit is seen whole enough to be refused instead of silently cut.
 */
export function checkRequestHead (req: IncomingMessage, http1: boolean, maxHeaderCount: number): HeadRefusal | AcceptedHead {
  if (!http1) {
    const conflict = authorityConflict(req.headers[':authority'] as string | undefined, req.headers.host)
    if (conflict !== null) return refuse(undefined, conflict)
  }
  // RFC 9110 §2.5 / §15.6.6: a major version the server does not speak is 505, not a proxied 200.
  if (http1 && req.httpVersionMajor !== 1) return refuse('version_not_supported', `HTTP/${req.httpVersion} is not spoken on an HTTP/1.1 listener`)
  const raw = req.rawHeaders
  if (raw.length / 2 > maxHeaderCount) return refuse('head_too_large', `the request has more than downstream.maxHeaderCount (${maxHeaderCount}) header fields`)
  // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1
  // request message that [...] contains more than one Host header field line". undici refuses
  // to send one, which used to surface as upstream_reset.
  let hosts = 0
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') hosts++
  if (hosts > 1) return refuse(undefined, 'the request has more than one Host field')
  const url = req.url ?? ''
  if (!url.startsWith('/')) return refuse(undefined, 'the request target must be a path (origin-form)')
  const query = url.indexOf('?')
  const rawPath = query === -1 ? url : url.slice(0, query)
  const normalised = normalisePath(rawPath)
  if ('error' in normalised) return refuse(undefined, normalised.error)
  const path = normalised.path
  return { path, target: path === rawPath ? url : path + (query === -1 ? '' : url.slice(query)) }
}

/**
 * RFC 9113 §8.3.1: "A server SHOULD treat a request as malformed if it contains a Host header
 * field that identifies an entity that differs from the entity in the :authority pseudo-header
 * field." Null when they agree (or one is absent).
 */
export function authorityConflict (authority: string | undefined, host: string | string[] | undefined): string | null {
  if (authority === undefined || host === undefined) return null
  const value = Array.isArray(host) ? host.join(',') : host
  return value.toLowerCase() === authority.toLowerCase() ? null : `the host field (${value.slice(0, 100)}) differs from :authority (${authority.slice(0, 100)})`
}
