// Gateway-made responses (DESIGN.md §4): JSON body, x-longhaul-error, Proxy-Status, all from the
// outcome catalogue, whether written through a ServerResponse or on a raw connection.
import type { ServerResponse } from 'node:http'
import { http } from '../node-http.ts'
import type { Duplex } from 'node:stream'
import { outcomeSpec, proxyStatusHeader, responseStatus, type Ending, type ErrorDocument } from './outcome.ts'

// Long enough for a queue slot to free or a load balancer to move on; short next to the requests.
const RETRY_AFTER_S = 1

interface ErrorResponse {
  status: number
  headers: Record<string, string | number>
  body: string
}

function errorResponse (ending: Ending, document: ErrorDocument): ErrorResponse {
  const spec = outcomeSpec(ending.outcome)
  const body = JSON.stringify(document)
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-longhaul-error': ending.outcome,
    'x-request-id': document.error.requestId
  }
  const proxyStatus = proxyStatusHeader(ending, document.error.elapsedMs)
  if (proxyStatus !== null) headers['proxy-status'] = proxyStatus
  if ('retry' in spec) {
    headers['x-should-retry'] = spec.retry === 'later' ? 'true' : 'false'
    if (spec.retry === 'later') headers['retry-after'] = RETRY_AFTER_S
  }
  // An unread request body (or a client that is going away) leaves the connection unusable.
  if ('connectionClose' in spec && spec.connectionClose) headers.connection = 'close'
  return { status: responseStatus(ending), headers, body }
}

/** Writes the gateway's error response; returns its status. */
export function writeErrorResponse (res: ServerResponse, ending: Ending, document: ErrorDocument): number {
  const { status, headers, body } = errorResponse(ending, document)
  res.writeHead(status, headers)
  res.end(body)
  return status
}

/**
 * The same response written as HTTP/1.1 bytes on a connection Node's parser gave up on (a head
 * it could not parse or that timed out), then closed; returns its status.
 */
export function writeRawErrorResponse (socket: Duplex, ending: Ending, document: ErrorDocument): number {
  const { status, headers, body } = errorResponse(ending, document)
  headers.connection = 'close'
  let head = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n`
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`
  socket.end(`${head}\r\n${body}`)
  return status
}
