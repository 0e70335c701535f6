// Gateway-made responses (DESIGN.md §4): JSON body, x-longhaul-error, Proxy-Status.
import type { ServerResponse } from 'node:http'
import { outcomeSpec, proxyStatusHeader, type Ending } from './outcome.ts'

export function writeErrorResponse (res: ServerResponse, ending: Ending, document: Record<string, unknown>): void {
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
  res.writeHead(spec.status, headers)
  res.end(body)
}
