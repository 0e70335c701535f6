// Which hop made a response, from what the client got: longhaul's x-longhaul-error or SSE error
// record, an RFC 9209 Proxy-Status member with an error, a known error page, then the Server and
// Via headers. The most specific evidence wins: the hop that wrote the error page made the cut; a
// Server header only names the outermost hop that sets one.
import type { Seen } from './exchange.ts'

export interface Fingerprint {
  /** A product name: longhaul, nginx, haproxy, envoy, gclb, cloudflare, aws-alb, or a Proxy-Status / Server name. */
  hop: string
  /** The evidence, quoted as the client got it. */
  by: string
  /** True when the evidence comes from the hop that made the error (not only a hop it passed). */
  maker: boolean
}

interface Page { hop: string, test: RegExp, what: string }

// Default error pages, most specific first (ALB's page mimics nginx's, so it comes before it).
const PAGES: readonly Page[] = [
  { hop: 'aws-alb', test: /<center>awselb\/[\d.]+<\/center>/, what: 'AWS ALB error page (awselb)' },
  { hop: 'cloudflare', test: /cloudflare/i, what: 'Cloudflare error page' },
  { hop: 'gclb', test: /upstream request timeout|Error: Server Error[\s\S]*The server encountered a temporary error/i, what: 'Google Cloud load balancer error page' },
  { hop: 'nginx', test: /<hr><center>nginx(\/[\d.]+)?<\/center>/, what: 'nginx error page' },
  { hop: 'haproxy', test: /^<html><body><h1>\d{3} [^<]*<\/h1>\n(The server didn't respond in time|No server is available to handle this request|An invalid response was received from the server|Your browser didn't send a complete request in time|Request forbidden by administrative rules)/, what: 'HAProxy error page' },
  { hop: 'envoy', test: /^(upstream request timeout|upstream connect error or disconnect\/reset before headers|stream timeout|no healthy upstream)/, what: 'Envoy local reply' },
]

const SSE_ERROR = /event: (?:longhaul-)?error\ndata: (\{.*\})\n/

/** The outcome code in a longhaul SSE error record, today's or the SDK-dialect one. */
export function sseErrorCode (body: string): string | null {
  const m = SSE_ERROR.exec(body) ?? /\ndata: (\{"error":\{.*\})\n/.exec(body)
  if (m === null) return null
  try {
    const record = JSON.parse(m[1]!) as { code?: unknown, error?: { code?: unknown } }
    const code = record.code ?? record.error?.code
    return typeof code === 'string' ? code : null
  } catch {
    return null
  }
}

/** The first Proxy-Status member that carries an error (RFC 9209: members are listed from the origin outwards). */
function proxyStatusError (value: string): { name: string, member: string } | null {
  for (const member of value.split(',').map((m) => m.trim())) {
    if (/;\s*error=/.test(member)) return { name: member.split(';')[0]!.trim().replace(/^"|"$/g, ''), member }
  }
  return null
}

function productOf (server: string): string {
  const s = server.toLowerCase()
  if (s.startsWith('awselb')) return 'aws-alb'
  if (s === 'google frontend' || s.startsWith('gfe')) return 'gclb'
  return s.split(/[/ ]/)[0]!
}

/** The hop that made this response, or null when nothing names one. */
export function fingerprint (seen: Seen): Fingerprint | null {
  const h = seen.headers
  const code = h['x-longhaul-error']
  if (code !== undefined) return { hop: 'longhaul', by: `x-longhaul-error: ${code}`, maker: true }
  const record = sseErrorCode(seen.body)
  if (record !== null) return { hop: 'longhaul', by: `SSE error record "code":"${record}"`, maker: true }
  const ps = h['proxy-status'] === undefined ? null : proxyStatusError(h['proxy-status'])
  if (ps !== null) return { hop: ps.name, by: `Proxy-Status: ${ps.member}`, maker: true }
  const fromTarget = h['x-longhaul-probe'] !== undefined
  if (!fromTarget && seen.status !== null) {
    for (const page of PAGES) {
      if (page.test.test(seen.body)) return { hop: page.hop, by: `${page.what}: ${firstLine(seen.body)}`, maker: true }
    }
    if (h['cf-ray'] !== undefined) return { hop: 'cloudflare', by: `cf-ray: ${h['cf-ray']}`, maker: true }
  }
  if (h.server !== undefined) return { hop: productOf(h.server), by: `Server: ${h.server}`, maker: false }
  if (h.via !== undefined) {
    const outer = h.via.split(',').pop()!.trim()
    return { hop: outer.split(/\s+/)[1] ?? outer, by: `Via: ${h.via}`, maker: false }
  }
  return null
}

/** An error page's gist: its title, or its first words. */
function firstLine (body: string): string {
  const title = /<title>([^<]*)<\/title>/i.exec(body)?.[1]
  const text = (title ?? body.replace(/<[^>]+>/g, ' ')).replace(/\s+/g, ' ').trim()
  return text.length > 80 ? `${text.slice(0, 77)}...` : text
}
