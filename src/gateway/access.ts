// The access line's fields that come from the request itself, the same for every kind of
// exchange (proxied request or tunnel), so the two cannot drift.
import type { IncomingMessage } from 'node:http'
import type { AccessRecord } from '../observe/log.ts'

export function requestFields (req: IncomingMessage): Pick<AccessRecord, 'method' | 'host' | 'path' | 'protocol' | 'clientIp'> {
  return {
    method: req.method ?? '',
    host: req.headers.host ?? null,
    path: req.url ?? '',
    protocol: `HTTP/${req.httpVersion}`,
    clientIp: req.socket.remoteAddress ?? ''
  }
}
