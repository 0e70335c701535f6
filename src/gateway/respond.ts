// Gateway-made responses (DESIGN.md §4): JSON body, x-longhaul-error, Proxy-Status, all from the
// outcome catalogue, whether written through a ServerResponse or on a raw connection.
import http, { type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { outcomeSpec, proxyStatusHeader, responseStatus, type Ending } from './outcome.ts'

interface ErrorResponse {
  status: number
  headers: Record<string, string | number>
  body: string
}

function errorResponse (ending: Ending, document: Record<string, unknown>): ErrorResponse {
  const spec = outcomeSpec(ending.outcome)
  const body = JSON.stringify({ error: document })
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-longhaul-error': ending.outcome,
    'x-request-id': String(document.requestId)
  }
  const proxyStatus = proxyStatusHeader(ending, document.elapsedMs as number)
  if (proxyStatus !== null) headers['proxy-status'] = proxyStatus
  if ('retryAfter' in spec && spec.retryAfter) headers['retry-after'] = 1
  // An unread request body (or a client that is going away) leaves the connection unusable.
  if ('connectionClose' in spec && spec.connectionClose) headers.connection = 'close'
  return { status: responseStatus(ending), headers, body }
}

/** Writes the gateway's error response; returns its status. */
export function writeErrorResponse (res: ServerResponse, ending: Ending, document: Record<string, unknown>): number {
  const { status, headers, body } = errorResponse(ending, document)
  res.writeHead(status, headers)
  res.end(body)
  return status
}

/**
 * The same response written as HTTP/1.1 bytes on a connection Node's parser gave up on (a head
 * it could not parse or that timed out), then closed; returns its status.
 */
export function writeRawErrorResponse (socket: Duplex, ending: Ending, document: Record<string, unknown>): number {
  const { status, headers, body } = errorResponse(ending, document)
  headers.connection = 'close'
  let head = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n`
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`
  socket.end(`${head}\r\n${body}`)
  return status
}
