// How a response is streamed is decided here, once per response (like Caddy's flushInterval).
import type { IncomingHttpHeaders } from 'node:http'

/** Event streams get the no-buffer hints and, on a cut, the error record. */
export function isEventStream (contentType: string | string[] | undefined): boolean {
  if (typeof contentType !== 'string') return false
  const type = contentType.slice(0, contentType.indexOf(';') >>> 0).trim().toLowerCase()
  return type === 'text/event-stream' || type === 'application/x-ndjson'
}

export function isSse (headers: IncomingHttpHeaders): boolean {
  const type = headers['content-type']
  return typeof type === 'string' && type.toLowerCase().startsWith('text/event-stream')
}

/** The record sent before a cut event stream is reset: `event: longhaul-error`, data = the error document. */
export function errorRecord (document: Record<string, unknown>): string {
  return `event: longhaul-error\ndata: ${JSON.stringify(document)}\n\n`
}

