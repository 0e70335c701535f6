// timeouts.firstEvent: the three clocks of a token stream kept apart. From the response headers
// to the first event that carries an answer, firstEvent runs and streamIdle does not; after it,
// streamIdle governs the gaps. Comments and heartbeats are no events. Unset, firstEvent follows
// streamIdle (one clock from the headers on, as before it existed).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { startGateway, prefixRoute, runCli, writeConfig, type RunningGateway } from './helpers/gateway.ts'
import { startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { assertAccess, assertElapsed, rawExchange, sseRecords } from './helpers/faults.ts'

let demo: DemoUpstream
let gw: RunningGateway

const CONFIG = (url: string): string => `
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams:
  demo: { endpoints: [${url}] }
routes:
${prefixRoute('thinking', '    timeouts: { firstEvent: 3s, streamIdle: 800ms }')}
${prefixRoute('strict', '    timeouts: { firstEvent: 800ms, streamIdle: 5s }')}
${prefixRoute('unset', '    timeouts: { streamIdle: 800ms }')}
`

before(async () => {
  demo = await startDemoUpstream()
  gw = await startGateway(CONFIG(demo.url))
})

after(async () => {
  await gw?.stop()
  await demo?.close()
})

/** GET an SSE path over a raw socket, so a cut stream shows as one (no final chunk). */
async function get (path: string, knobs: Record<string, string | number>): Promise<{ id: string, res: Awaited<ReturnType<typeof rawExchange>> }> {
  const id = randomUUID()
  const headers = Object.entries(knobs).map(([k, v]) => `x-demo-${k}: ${v}\r\n`).join('')
  const res = await rawExchange(gw.url, `GET ${path} HTTP/1.1\r\nhost: t\r\nx-request-id: ${id}\r\n${headers}connection: close\r\n\r\n`)
  return { id, res }
}

/** The error record of a cut stream, in whichever dialect the route's record uses. */
function errorCode (text: string): unknown {
  const record = sseRecords(text).find((r) => /"code":"[a-z_]+"/.test(r.data) && /error/.test(r.event + r.data))
  if (record === undefined) return undefined
  const doc = JSON.parse(record.data) as { code?: string, error?: { code?: string } }
  return doc.code ?? doc.error?.code
}

describe('firstEvent', { concurrency: true }, () => {
  test('a stream whose first event comes after 1.5 s passes firstEvent: 3s, streamIdle: 800ms', async () => {
    const { id, res } = await get('/thinking/sse', { 'first-event-after-ms': 1500, chunks: 3, 'interval-ms': 10 })
    assert.equal(res.status, 200)
    assert.ok(res.complete, 'the stream ended cleanly')
    assert.equal(sseRecords(res.body.toString()).filter((r) => r.event === 'tick').length, 3)
    assertAccess(await gw.accessLine(id), { outcome: 'ok', status: 200 })
  })

  test('after the first event, streamIdle governs the gaps again', async () => {
    const { id, res } = await get('/thinking/sse', { 'first-event-after-ms': 100, chunks: 3, 'interval-ms': 10, 'pause-after': 1, 'pause-ms': 2000 })
    assert.equal(res.status, 200)
    assert.ok(!res.complete, 'the cut stream has no clean end')
    assert.equal(errorCode(res.body.toString()), 'stream_idle_timeout')
    assertAccess(await gw.accessLine(id), { outcome: 'stream_idle_timeout', status: 200, limitMs: 800 })
  })

  test('the same stream is cut as first_event_timeout with firstEvent: 800ms: comments are no events', async () => {
    const { id, res } = await get('/strict/sse', { 'first-event-after-ms': 1500, 'comment-every-ms': 200, chunks: 3, 'interval-ms': 10 })
    assert.equal(res.status, 200)
    assert.ok(!res.complete, 'the cut stream has no clean end')
    const text = res.body.toString()
    assert.ok(text.startsWith(': thinking\n\n'), JSON.stringify(text))
    assert.equal(sseRecords(text).filter((r) => r.event === 'tick').length, 0)
    assert.equal(errorCode(text), 'first_event_timeout')
    const line = await gw.accessLine(id)
    assertAccess(line, { outcome: 'first_event_timeout', status: 200, limitMs: 800 })
    // Counted from the response headers, which came at once.
    assertElapsed(line.durationMs, 800, 'first_event_timeout')
  })

  test('on a body that is not an event stream, the first byte is the first event', async () => {
    const id = randomUUID()
    const res = await rawExchange(gw.url, `POST /strict/v1/chat/completions HTTP/1.1\r\nhost: t\r\nx-request-id: ${id}\r\nx-demo-stall-after: 0\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}`)
    assert.equal(res.status, 200)
    assert.ok(!res.complete)
    assertAccess(await gw.accessLine(id), { outcome: 'first_event_timeout', status: 200, limitMs: 800 })
  })

  test('unset, firstEvent follows streamIdle: the 1.5 s wait is cut by streamIdle, as before', async () => {
    const { id, res } = await get('/unset/sse', { 'first-event-after-ms': 1500, chunks: 3, 'interval-ms': 10 })
    assert.equal(res.status, 200)
    assert.equal(errorCode(res.body.toString()), 'stream_idle_timeout')
    assertAccess(await gw.accessLine(id), { outcome: 'stream_idle_timeout', status: 200, limitMs: 800 })
  })

  test('/config shows firstEvent with its provenance: route, or default when it follows streamIdle', async () => {
    const config = await (await fetch(`${gw.adminUrl}/config`)).json() as { routes: Array<{ name: string, timeouts: Record<string, { ms: number | null, source: string }> }> }
    const of = (name: string): Record<string, { ms: number | null, source: string }> => config.routes.find((r) => r.name === name)!.timeouts
    assert.deepEqual(of('thinking').firstEvent, { ms: 3000, source: 'route' })
    assert.deepEqual(of('unset').firstEvent, { ms: 800, source: 'default' })
  })
})

test('check --explain prints firstEvent with its provenance; a firstEvent not below request warns', async () => {
  const { path } = await writeConfig(`upstreams:
  u: { endpoints: [http://127.0.0.1:9] }
routes:
  - name: a
    match: { pathPrefix: /a }
    upstream: u
    timeouts: { streamIdle: 90s }
  - name: b
    match: { pathPrefix: /b }
    upstream: u
    timeouts: { firstEvent: 10m, request: 5m }
`)
  const a = await runCli(['check', '--config', path, '--explain', 'a'])
  assert.equal(a.code, 0, a.stderr)
  assert.match(a.stdout, /^firstEvent\s+= streamIdle \(90s\)\s+default\s+first_event_timeout$/m)
  const b = await runCli(['check', '--config', path, '--explain', 'b'])
  assert.match(b.stdout, /^firstEvent\s+10m\s+route\s+first_event_timeout$/m)
  assert.match(b.stderr, /:11:17 routes\[1\]\.timeouts\.firstEvent: warning: firstEvent \(10m\) is not shorter than request \(5m\)/)

})
