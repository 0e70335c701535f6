// Upstreams for tests: the demo upstream in-process, a port nobody listens on, and an endpoint
// whose connects never complete (a listening socket with a full accept queue).
import net from 'node:net'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { startDemoUpstream, type DemoUpstream, type DemoRequestEnd, type DemoRequestStart } from '../../src/demo/upstream.ts'

export { startDemoUpstream, type DemoUpstream, type DemoRequestEnd }

/**
 * Resolves when the demo upstream receives the request that carries this x-request-id: the
 * event a test waits on instead of a sleep "so the request arrives". Call it before sending.
 */
export function arrivalOf (demo: DemoUpstream, requestId: string, timeoutMs = 5000): Promise<DemoRequestStart> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      demo.events.off('request', listener)
      reject(new Error(`the demo upstream did not receive ${requestId} within ${timeoutMs} ms`))
    }, timeoutMs)
    const listener = (e: DemoRequestStart): void => {
      if (e.headers['x-request-id'] !== requestId) return
      clearTimeout(timer)
      demo.events.off('request', listener)
      resolve(e)
    }
    demo.events.on('request', listener)
  })
}

/** Resolves with the next 'request-end' of the demo upstream that matches. */
export function nextRequestEnd (demo: DemoUpstream, match: (e: DemoRequestEnd) => boolean = () => true, timeoutMs = 5000): Promise<DemoRequestEnd> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      demo.events.off('request-end', listener)
      reject(new Error(`no matching request-end on the demo upstream within ${timeoutMs} ms`))
    }, timeoutMs)
    const listener = (e: DemoRequestEnd): void => {
      if (!match(e)) return
      clearTimeout(timer)
      demo.events.off('request-end', listener)
      resolve(e)
    }
    demo.events.on('request-end', listener)
  })
}

/** The request-end of the upstream request that carried this x-request-id. */
export function requestEndOf (demo: DemoUpstream, requestId: string, timeoutMs = 5000): Promise<DemoRequestEnd> {
  return nextRequestEnd(demo, (e) => e.headers['x-request-id'] === requestId, timeoutMs)
}

/** A loopback port with nothing listening on it (connection refused). */
export async function closedPort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

export interface Blackhole {
  url: string
  close: () => void
}

/**
 * An endpoint whose TCP connects hang: a socket that listens with a backlog of 0 and never
 * accepts, its queue filled by two idle connections, so the kernel drops further SYNs. Node
 * accepts on its own, so the listener is a small python3 process (python3 is on every machine
 * of this project's kind: node-gyp needs it).
 */
export async function startBlackhole (): Promise<Blackhole> {
  const child = spawn('python3', ['-c', [
    'import socket, sys, time',
    's = socket.socket()',
    "s.bind(('127.0.0.1', 0))",
    's.listen(0)',
    'print(s.getsockname()[1], flush=True)',
    'sys.stdin.read()'
  ].join('\n')], { stdio: ['pipe', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve(Number(line)))
    child.once('error', reject)
  })
  const fillers: net.Socket[] = []
  for (let i = 0; i < 2; i++) {
    const socket = net.connect(port, '127.0.0.1')
    socket.on('error', () => {})
    fillers.push(socket)
    await new Promise<void>((resolve) => { socket.once('connect', () => resolve()); setTimeout(resolve, 200) })
  }
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      for (const s of fillers) s.destroy()
      child.stdin!.end()
      child.kill()
    }
  }
}
