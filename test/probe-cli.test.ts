// `longhaul probe` as a command: its usage errors, a URL that is not a probe target, a bad chain
// file (refused before any probing), the HTML report, and a target with no hop in front (the
// app's own keep-alive, named as the target's).
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startDemoUpstream, type DemoUpstream } from '../src/demo/upstream.ts'
import { runCli, startGateway } from './helpers/gateway.ts'
import type { FullReport } from '../src/probe/report.ts'

let up: DemoUpstream
let dir: string
before(async () => {
  // A short keep-alive: the target's own idle close is one of the limits found below.
  up = await startDemoUpstream({ keepAliveTimeoutMs: 500 })
  dir = await mkdtemp(join(tmpdir(), 'longhaul-probe-cli-'))
})
after(async () => {
  await up.close()
  await rm(dir, { recursive: true, force: true })
})

test('usage errors exit 2 and say what is wrong', { timeout: 60_000 }, async () => {
  const cases: Array<[string[], RegExp]> = [
    [['probe', 'not a url'], /invalid URL 'not a url': write it with its scheme/],
    [['probe', 'ftp://127.0.0.1/'], /the probe speaks http and https, not ftp:/],
    [['probe', 'http://127.0.0.1:1/', '--max', '10'], /--max: invalid duration '10': write a number with a unit/],
    [['probe', 'http://127.0.0.1:1/', '--max', '500ms'], /--max must be between 1s and 1h, got '500ms'/],
    [['probe', 'http://127.0.0.1:1/', '--concurrency', '0'], /--concurrency must be 1-10, got '0'/],
    [['probe', 'http://127.0.0.1:1/', '--only', 'firstByte'], /--only: unknown limit 'firstByte' \(limits: firstByteTimeout, streamIdleTimeout, requestTimeout, bodyIdleTimeout, serverIdleTimeout\)/],
  ]
  // Side by side: each is a process start, and none waits for anything.
  const results = await Promise.all(cases.map(([args]) => runCli(args)))
  cases.forEach(([args, message], i) => {
    assert.equal(results[i]!.code, 2, args.join(' '))
    assert.match(results[i]!.stderr, message, args.join(' '))
  })
})

test('a URL that is not a probe target is refused before anything else is sent (exit 1)', { timeout: 30_000 }, async () => {
  const paths: string[] = []
  const app = http.createServer((req, res) => { paths.push(req.url ?? ''); res.writeHead(404).end('not here') })
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve))
  try {
    const url = `http://127.0.0.1:${(app.address() as AddressInfo).port}/api/`
    const r = await runCli(['probe', url, '--max', '1s'])
    assert.equal(r.code, 1)
    assert.equal(r.stderr, `longhaul probe: ${url} does not answer as a probe target (HTTP 404 from longhaul-probe/hello): run \`longhaul demo-upstream\` beside the app and route /api/longhaul-probe/ to it\n`)
    assert.equal(r.stdout, '')
    assert.deepEqual(paths, ['/api/longhaul-probe/hello'])
  } finally {
    await new Promise((resolve) => app.close(resolve))
  }
  const refused = await runCli(['probe', 'http://127.0.0.1:9/', '--max', '1s'])
  assert.equal(refused.code, 1)
  assert.match(refused.stderr, /does not answer as a probe target \(no answer from longhaul-probe\/hello\)/)
})

test('an invalid chain file is reported with its position, before any probe request', { timeout: 30_000 }, async () => {
  const chain = join(dir, 'bad-chain.yaml')
  await writeFile(chain, 'workload: { duration: 20s }\nhops:\n  - { name: client, preset: curl }\n  - { name: edge, preset: nginxx }\n')
  let runs = 0
  const count = (e: { path: string }): void => { if (e.path.includes('/longhaul-probe/')) runs++ }
  up.events.on('request', count)
  try {
    const r = await runCli(['probe', `${up.url}/`, '--max', '1s', '--chain', chain])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /bad-chain\.yaml:4:\d+ hops\[1\]\.preset: unknown preset 'nginxx' \(did you mean 'nginx'\?\)/)
  } finally {
    up.events.off('request', count)
  }
  assert.equal(runs, 0)
})

test('no hop in front: the idle close is the target\'s own keep-alive; HTML report', { timeout: 60_000 }, async () => {
  const json = await runCli(['probe', `${up.url}/`, '--max', '3s', '--only', 'serverIdleTimeout,firstByteTimeout', '--json'])
  assert.equal(json.code, 0, json.stderr)
  const report = JSON.parse(json.stdout) as FullReport
  const idle = report.limits.find((l) => l.name === 'serverIdleTimeout')!
  // Node's server closes an idle connection keepAliveTimeout plus its keepAliveTimeoutBuffer (1 s) after the response.
  assert.equal(idle.status, 'found')
  assert.ok(Math.abs(idle.ms! - 1500) <= 250, String(idle.ms))
  assert.equal(idle.cut!.hop, 'target')
  assert.match(idle.cut!.target, /the target closed the client's connection itself \(its own keep-alive\)/)
  assert.equal(report.limits.find((l) => l.name === 'firstByteTimeout')!.status, 'none')

  const out = join(dir, 'report.html')
  const html = await runCli(['probe', `${up.url}/`, '--max', '1s', '--only', 'firstByteTimeout', '--format', 'html', '--out', out])
  assert.equal(html.code, 0, html.stderr)
  assert.match(html.stderr, /report\.html: 0 limits found, 0 clean cuts\n/)
  const page = await readFile(out, 'utf8')
  assert.match(page, /^<!doctype html>/)
  assert.match(page, /<tr><th>time to first byte<br><small>from the request to the response headers<\/small><\/th><td>none up to 1\.00 s<\/td>/)
})

test('--http2: a longhaul h2c listener\'s cut is an RST_STREAM INTERNAL_ERROR after the SSE record; its session idle limit is found', { timeout: 90_000 }, async () => {
  const gw = await startGateway(`listen: [{ address: 127.0.0.1:0, protocol: h2c }]
admin: { address: 127.0.0.1:0 }
downstream: { idleTimeout: 1500ms }
upstreams: { app: { endpoints: [${up.url}] } }
routes:
  - { name: all, upstream: app, timeouts: { streamIdle: 1s } }
drain: { delay: 0s, timeout: 3s }
`)
  try {
    const r = await runCli(['probe', `${gw.url}/`, '--http2', '--max', '3s', '--only', 'streamIdleTimeout,serverIdleTimeout', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const report = JSON.parse(r.stdout) as FullReport
    const silence = report.limits.find((l) => l.name === 'streamIdleTimeout')!
    assert.ok(Math.abs(silence.ms! - 1000) <= 250, String(silence.ms))
    assert.equal(silence.cut!.hop, 'longhaul')
    assert.equal(silence.cut!.client, 'HTTP 200, then RST_STREAM INTERNAL_ERROR before the end of the body')
    assert.equal(silence.cut!.curl, 'curl: (92) HTTP/2 stream 1 was not closed cleanly: INTERNAL_ERROR (err 2)')
    assert.equal(silence.cut!.clean, false)
    const idle = report.limits.find((l) => l.name === 'serverIdleTimeout')!
    assert.ok(Math.abs(idle.ms! - 1500) <= 250, String(idle.ms))
  } finally {
    await gw.stop()
  }
})
