// How a response is streamed is decided here, once per response (like Caddy's flushInterval).
import type { IncomingHttpHeaders } from 'node:http'
import type { ErrorDocument } from './outcome.ts'

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

/**
 * The record sent before a cut event stream is reset: `event: error`, data = the error document.
 * The openai SDKs raise an APIError on data with an `error` member (whatever the event name), the
 * Anthropic SDKs on `event: error`: one record speaks to both, and to raw SSE readers.
 */
export function errorRecord (document: ErrorDocument): string {
  return `event: error\ndata: ${JSON.stringify(document)}\n\n`
}

