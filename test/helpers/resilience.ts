// Helpers of the upstream resilience tests (balancing, retries, health, admission): /metrics and
// /status of a running gateway, waiting for a condition, a plain upstream whose answers a test can
// flip, and a raw backend that loses the keep-alive race on purpose.
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import type { RunningGateway } from './gateway.ts'

export async function metricsText (gw: RunningGateway): Promise<string> {
  const res = await request(`${gw.adminUrl}/metrics`)
  return await res.body.text()
}

/** The value of one series in Prometheus text, 0 when it is absent (a counter never incremented). */
export function metricValue (text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    const match = /^[^{ ]+(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null) continue
    const found: Record<string, string> = {}
    for (const pair of (match[1] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found[pair[1]!] = pair[2]!
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(match[2])
  }
  return 0
}

export async function metric (gw: RunningGateway, name: string, labels: Record<string, string> = {}): Promise<number> {
  return metricValue(await metricsText(gw), name, labels)
}

export interface EndpointStatus { url: string, healthy: boolean, inflight: number, ejectedForMs?: number, queued?: number, maxInflight?: number }
export interface UpstreamStatus { panic: boolean, queued: number, endpoints: EndpointStatus[] }

export async function upstreamStatus (gw: RunningGateway, upstream: string): Promise<UpstreamStatus> {
  const res = await request(`${gw.adminUrl}/status`)
  const status = await res.body.json() as { upstreams: Record<string, UpstreamStatus> }
  const found = status.upstreams[upstream]
  if (found === undefined) throw new Error(`no upstream ${upstream} in /status: ${JSON.stringify(status.upstreams)}`)
  return found
}

export function endpointOf (status: UpstreamStatus, url: string): EndpointStatus {
  const found = status.endpoints.find((e) => e.url === url)
  if (found === undefined) throw new Error(`no endpoint ${url} in ${JSON.stringify(status)}`)
  return found
}

/**
 * Polls `probe` until it returns something other than undefined or false: for states that only
 * /status or /metrics show (no log line marks them). Rejects with `what` after timeoutMs.
 */
export async function waitFor<T> (what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 5000): Promise<T> {
  const until = performance.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await probe()
      if (value !== undefined && value !== false) return value
    } catch (err) {
      last = err
    }
    if (performance.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

export interface SwitchableUpstream {
  url: string
  /** Status of every answer but /health (200 by default). */
  status: number
  /** Status of /health (200 by default). */
  health: number
  /** /health answers only after this long: longer than the check's timeout is a failed check. */
  healthDelayMs: number
  /** Requests other than /health, in arrival order. */
  readonly requests: Array<{ method: string, path: string, requestId: string | undefined }>
  /** /health requests seen. */
  healthChecks (): number
  close (): Promise<void>
}

/**
 * A plain upstream a test flips between healthy and failing (the demo upstream's faults travel
 * with the request, so they would hit every endpoint alike; this one fails on its own).
 */
export async function startSwitchableUpstream (): Promise<SwitchableUpstream> {
  let checks = 0
  const server = http.createServer((req, res) => {
    req.resume()
    req.once('end', () => {
      const isHealth = req.url === '/health'
      if (isHealth) checks++
      else up.requests.push({ method: req.method ?? '', path: req.url ?? '', requestId: req.headers['x-request-id'] as string | undefined })
      const status = isHealth ? up.health : up.status
      const body = JSON.stringify({ endpoint: up.url, status })
      const answer = (): void => { res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body) }
      if (isHealth && up.healthDelayMs > 0) setTimeout(answer, up.healthDelayMs)
      else answer()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const up: SwitchableUpstream = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    status: 200,
    health: 200,
    healthDelayMs: 0,
    requests: [],
    healthChecks: () => checks,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  }
  return up
}

export interface RaceRequest { method: string, path: string, requestId: string | undefined, connection: number }

export interface RacingBackend {
  url: string
  /** Connections accepted so far. */
  connections (): number
  /** Requests answered (the first one of each connection). */
  readonly answered: RaceRequest[]
  /** Requests that arrived on a connection that had already answered one: dropped unanswered. */
  readonly dropped: RaceRequest[]
  close (): Promise<void>
}

/**
 * A backend that loses the keep-alive race every time (undici's test/client-keep-alive.js style,
 * a raw `net` server): it answers the first request of a connection with `Connection:
 * keep-alive` and `Keep-Alive: timeout=10`, then closes the connection silently the moment the
 * next request arrives on it, as a server does whose idle close fires just as a request comes in.
 * `close: 'fin'` closes it normally (the peer reads EOF); `'rst'` resets it (the peer reads
 * ECONNRESET), the two ways the race shows up.
 */
export async function startRacingBackend (options: { close: 'fin' | 'rst' } = { close: 'fin' }): Promise<RacingBackend> {
  let connections = 0
  const answered: RaceRequest[] = []
  const dropped: RaceRequest[] = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    const connection = ++connections
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buffered = ''
    let served = false
    socket.on('data', (data: Buffer) => {
      buffered += data.toString('latin1')
      const end = buffered.indexOf('\r\n\r\n')
      if (end === -1) return
      const head = buffered.slice(0, end)
      const [method = '', path = ''] = head.split(' ')
      const requestId = /\r\nx-request-id: *([^\r\n]+)/i.exec(head)?.[1]
      const seen = { method, path, requestId, connection }
      if (served) {
        dropped.push(seen)
        if (options.close === 'rst') socket.resetAndDestroy()
        else socket.destroy()
        return
      }
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
      if (buffered.length < end + 4 + length) return // the body is still arriving
      buffered = buffered.slice(end + 4 + length)
      served = true
      answered.push(seen)
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: keep-alive\r\nKeep-Alive: timeout=10\r\n\r\nok')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
    answered,
    dropped,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      for (const s of sockets) s.destroy()
    })
  }
}
