// A simulated outer load balancer: a TCP proxy that cuts a connection once no byte has crossed it,
// in either direction, for `idleMs` (the idle timeout of AWS ALB, GCLB, nginx's proxy_read_timeout).
import net from 'node:net'
import { hostPort } from './faults.ts'

export interface IdleProxy {
  /** http://127.0.0.1:PORT: connect here to reach the target through the proxy. */
  url: string
  /** Connections the proxy cut for idleness. */
  cuts: () => number
  close: () => Promise<void>
}

export async function startIdleProxy (targetUrl: string, idleMs: number): Promise<IdleProxy> {
  const target = hostPort(targetUrl)
  const sockets = new Set<net.Socket>()
  let cuts = 0
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host)
    sockets.add(client)
    sockets.add(upstream)
    const timer = setTimeout(() => {
      cuts++
      client.destroy()
      upstream.destroy()
    }, idleMs)
    const end = (): void => {
      clearTimeout(timer)
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      from.on('data', (chunk: Buffer) => {
        timer.refresh()
        to.write(chunk)
      })
      from.on('end', () => to.end())
      from.on('error', end)
      from.on('close', end)
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    cuts: () => cuts,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    })
  }
}
