// The admin listener, the embedded demo (`longhaul serve` with no config) and the bin script.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { request } from 'undici'
import { ROOT, startGateway, type RunningGateway } from './helpers/gateway.ts'
import { startDemoUpstream } from './helpers/upstreams.ts'

const running: RunningGateway[] = []
after(async () => { await Promise.all(running.map((g) => g.stop())) })

test('the embedded demo serves a streaming chat and prints what to curl', async () => {
  // Runs from the repo root, where there is no longhaul.yaml: the embedded demo starts.
  const gw = await startGateway(null, { args: ['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'] })
  running.push(gw)
  const banner = await gw.waitForStderr(/the effective timeouts/)
  assert.match(banner, /curl -N http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions/)
  assert.match(banner, /x-demo-stall-after/)
  assert.match(banner, /curl -N http:\/\/127\.0\.0\.1:\d+\/v1\/messages/)
  const res = await request(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-demo-chunks': '5', 'x-demo-interval-ms': '10' },
    body: JSON.stringify({ stream: true })
  })
  assert.equal(res.statusCode, 200)
  assert.equal(res.headers['content-type'], 'text/event-stream')
  const text = await res.body.text()
  assert.equal(text.match(/^data: \{/gm)?.length, 6) // 5 tokens and the finish chunk
  assert.match(text, /data: \[DONE\]\n\n$/)
  const line = await gw.accessLine(res.headers['x-request-id'] as string)
  assert.equal(line.route, 'chat')
  assert.equal(line.outcome, 'ok')
  // The embedded demo is a config like any other: it must pass its own checks without a warning.
  assert.deepEqual(gw.lines.filter((l) => l.msg === 'config warning'), [])
})

test('admin: /healthz 200, /readyz 200 while serving, /config shows each route\'s timeouts with provenance', async () => {
  const demo = await startDemoUpstream()
  const gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams: { demo: { endpoints: [${demo.url}] } }
defaults: { timeouts: { streamIdle: 45s } }
routes:
  - name: chat
    match: { pathPrefix: /v1/chat }
    upstream: demo
    timeouts: { request: 15m, firstByte: 2m }
  - name: rest
    upstream: demo
`)
  running.push(gw)
  after(() => demo.close())
  const healthz = await request(`${gw.adminUrl}/healthz`)
  assert.equal(healthz.statusCode, 200)
  await healthz.body.dump()
  const readyz = await request(`${gw.adminUrl}/readyz`)
  assert.equal(readyz.statusCode, 200)
  assert.deepEqual(await readyz.body.json(), { state: 'serving' })
  const config = await (await request(`${gw.adminUrl}/config`)).body.json() as { routes: Array<{ name: string, timeouts: Record<string, { ms: number | null, source: string }> }> }
  const [chat, rest] = config.routes
  assert.deepEqual(chat!.timeouts, {
    firstByte: { ms: 120_000, source: 'route' },
    firstEvent: { ms: 45_000, source: 'default' },
    streamIdle: { ms: 45_000, source: 'defaults' },
    request: { ms: 900_000, source: 'route' },
    maxClientTimeout: { ms: 900_000, source: 'default' },
    tunnelIdle: { ms: 300_000, source: 'default' }
  })
  assert.deepEqual(rest!.timeouts.request, { ms: 600_000, source: 'default' })
  assert.deepEqual(rest!.timeouts.firstByte, { ms: 600_000, source: 'default' })
  const missing = await request(`${gw.adminUrl}/nope`)
  assert.equal(missing.statusCode, 404)
  await missing.body.dump()
})

test('bin/longhaul runs the CLI on the installed Node 24 and exits 2 on a usage error', async () => {
  const run = (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> => new Promise((resolve) => {
    execFile(join(ROOT, 'bin', 'longhaul'), args, { env: { PATH: '/usr/bin:/bin' } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : Number((err as { code?: number }).code), stdout, stderr })
    })
  })
  const help = await run(['--help'])
  assert.equal(help.code, 0)
  assert.match(help.stdout, /serve/)
  assert.match(help.stdout, /check/)
  assert.match(help.stdout, /demo-upstream/)
  const usage = await run(['serve', '--no-such-flag'])
  assert.equal(usage.code, 2)
  assert.match(usage.stderr, /unknown option/)
})

test('a listener that cannot bind: the error is logged and the process exits 1 (nothing left listening)', async () => {
  const net = await import('node:net')
  const taken = net.createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  after(() => taken.close())
  const port = (taken.address() as import('node:net').AddressInfo).port
  const { spawn } = await import('node:child_process')
  const { writeConfig, CLI } = await import('./helpers/gateway.ts')
  const { path } = await writeConfig(`listen: [{ address: 127.0.0.1:${port} }]
admin: { address: 127.0.0.1:0 }
upstreams: { demo: { endpoints: [http://127.0.0.1:9] } }
routes: [{ name: all, upstream: demo }]
`)
  const child = spawn(process.execPath, [CLI, 'serve', '--config', path], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  clearTimeout(timer)
  assert.equal(code, 1, out)
  assert.match(out, /"msg":"start failed"/)
  assert.match(out, /EADDRINUSE/)
  assert.match(out, /"msg":"exit"/)
})
