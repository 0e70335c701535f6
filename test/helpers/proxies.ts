// Real nginx and HAProxy (Debian packages), started by a test on loopback: a temp directory for
// their config, logs and temp files, a port the kernel just handed out and took back (free,
// barring a race), stopped by PID. `proxiesMissing()` says why a test must skip without them.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { closedPort } from './upstreams.ts'

export interface RunningProxy {
  url: string
  port: number
  stderr: () => string
  stop: () => Promise<void>
}

const BINARIES = { nginx: ['/usr/sbin/nginx', 'nginx'], haproxy: ['/usr/sbin/haproxy', 'haproxy'] } as const

function which (name: keyof typeof BINARIES): string | null {
  for (const candidate of BINARIES[name]) {
    if (spawnSync(candidate, ['-v'], { stdio: 'ignore' }).error === undefined) return candidate
  }
  return null
}

/** Why the proxy tests cannot run here, or null when nginx and HAProxy are both installed. */
export function proxiesMissing (): string | null {
  const missing = (Object.keys(BINARIES) as Array<keyof typeof BINARIES>).filter((n) => which(n) === null)
  return missing.length === 0 ? null : `${missing.join(' and ')} not installed (apt-get install nginx haproxy; .ci/run does)`
}

/** Resolves once the port accepts a connection (the proxy has no readiness signal of its own). */
async function listening (port: number, child: ChildProcess, stderr: () => string, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (true) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${stderr()}`)
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1')
      s.once('connect', () => { s.destroy(); resolve(true) })
      s.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > until) throw new Error(`not listening on ${port} within ${timeoutMs} ms: ${stderr()}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

async function launch (bin: string, args: string[], port: number, dir: string): Promise<RunningProxy> {
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
    await rm(dir, { recursive: true, force: true })
  }
  try {
    await listening(port, child, () => err)
  } catch (e) {
    await stop()
    throw e
  }
  return { url: `http://127.0.0.1:${port}`, port, stderr: () => err, stop }
}

/** nginx in the foreground, one process, in front of `upstream`; `location` holds the proxy directives. */
export async function startNginx (upstream: string, o: { location: string, server?: string }): Promise<RunningProxy> {
  const dir = await mkdtemp(join(tmpdir(), 'longhaul-nginx-'))
  await mkdir(join(dir, 'tmp'))
  const port = await closedPort()
  const conf = `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  server {
    listen 127.0.0.1:${port};
    ${o.server ?? ''}
    location / {
      proxy_pass ${upstream};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      ${o.location}
    }
  }
}
`
  await writeFile(join(dir, 'nginx.conf'), conf)
  return await launch(which('nginx')!, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', 'stderr'], port, dir)
}

/** HAProxy in the foreground in front of `upstream` (host:port); `timeouts` are `timeout ...` lines. */
export async function startHaproxy (upstream: string, o: { timeouts: string }): Promise<RunningProxy> {
  const dir = await mkdtemp(join(tmpdir(), 'longhaul-haproxy-'))
  const port = await closedPort()
  const conf = `global
  maxconn 256
defaults
  mode http
  option http-keep-alive
${o.timeouts.split('\n').map((l) => `  ${l.trim()}`).join('\n')}
frontend fe
  bind 127.0.0.1:${port}
  default_backend be
backend be
  server app ${upstream.replace(/^http:\/\//, '')}
`
  await writeFile(join(dir, 'haproxy.cfg'), conf)
  return await launch(which('haproxy')!, ['-db', '-f', join(dir, 'haproxy.cfg')], port, dir)
}
