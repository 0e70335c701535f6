// A WebSocket handshake through the gateway with the `ws` client: the open tunnel, or the HTTP
// answer that refused it (a gateway error, or the upstream's refusal).
import WebSocket from 'ws'

export interface Refusal { status: number, headers: Record<string, string | string[] | undefined>, body: string }

/** Resolves with the open socket, or with the refusal and its whole body. */
export function openTunnel (url: string, headers: Record<string, string> = {}): Promise<WebSocket | Refusal> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers })
    ws.once('open', () => resolve(ws))
    ws.once('unexpected-response', (_req, res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    ws.once('error', reject)
  })
}
