// The live admin page (issue 15): GET / on the admin listener renders the requests in flight with
// a bar per limit, readable without JavaScript; in headless Chromium it updates from /live (SSE)
// and the silence bar starts over when an event arrives.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtemp, readFile, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import http from 'node:http'
import { request } from 'undici'
import { startGateway, prefixRoute, type RunningGateway } from './helpers/gateway.ts'
import { startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'

let demo: DemoUpstream
let gw: RunningGateway

before(async () => {
  demo = await startDemoUpstream({ host: '127.0.0.1', port: 0 })
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams: { demo: { endpoints: [${demo.url}] } }
routes:
${prefixRoute('chat', '    timeouts: { streamIdle: 2s, request: 30s }')}
`)
})

after(async () => {
  await gw?.stop()
  await demo?.close()
})

function chromiumPath (): string | null {
  for (const name of ['chromium', 'chromium-browser']) {
    const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' })
    if (found.status === 0) return found.stdout.trim()
  }
  return null
}

/** A stream of `chunks` events, one every `intervalMs`, held open by the test while it looks. */
async function openStream (path: string, chunks: number, intervalMs: number): Promise<{ done: Promise<string>, firstEvent: Promise<void>, close: () => void }> {
  const res = await request(`${gw.url}${path}`, { headers: { 'x-demo-chunks': String(chunks), 'x-demo-interval-ms': String(intervalMs), 'x-request-id': 'live-stream-1' } })
  assert.equal(res.statusCode, 200)
  let text = ''
  let seen: () => void = () => {}
  const firstEvent = new Promise<void>((resolve) => { seen = resolve })
  let closed = false
  const done = (async () => {
    try {
      for await (const chunk of res.body) {
        text += chunk.toString()
        if (text.includes('\n\n')) seen()
      }
    } catch (err) {
      if (!closed) throw err
    }
    return text
  })()
  // The test is done with the stream: the client leaves (the rest of it is not needed).
  const close = (): void => { closed = true; res.body.destroy() }
  return { done, firstEvent, close }
}

test('admin /: in-flight requests, bars and tables without JavaScript; /live streams snapshots', { timeout: 30_000 }, async () => {
  const stream = await openStream('/chat/sse', 6, 700)
  await stream.firstEvent

  const page = await request(`${gw.adminUrl}/`)
  assert.equal(page.statusCode, 200)
  assert.match(String(page.headers['content-type']), /^text\/html; charset=utf-8/)
  const html = await page.body.text()
  assert.doesNotMatch(html, /<link |src="http|<script src/, 'self-contained: no external asset')
  // Readable without JavaScript: the request, its route, and a bar per running limit.
  assert.match(html, /<tr data-id="live-stream-1"><td><code>GET \/chat\/sse<\/code>/)
  assert.match(html, /<td>chat → demo<\/td>/)
  assert.match(html, /<span class="name">streamIdle<\/span><span class="bar"><span class="fill \w+" data-elapsed="\d+" data-limit="2000"/)
  assert.match(html, /<span class="name">request<\/span><span class="bar"><span class="fill \w+" data-elapsed="\d+" data-limit="30000"/)
  assert.match(html, /<table id="upstreams">.*healthy/s)
  assert.match(html, /<table id="headroom">/)

  // /live: server-sent snapshots of the same state.
  const live = await request(`${gw.adminUrl}/live`)
  assert.equal(live.statusCode, 200)
  assert.match(String(live.headers['content-type']), /^text\/event-stream/)
  let buffered = ''
  for await (const chunk of live.body) {
    buffered += chunk.toString()
    if (buffered.includes('\n\n')) break
  }
  live.body.destroy()
  const snapshot = JSON.parse(/^event: snapshot\ndata: (.*)$/m.exec(buffered)![1]!) as { inflight: Array<{ id: string, route: string, clocks: Array<{ limit: string, limitMs: number, elapsedMs: number }> }> }
  const mine = snapshot.inflight.find((r) => r.id === 'live-stream-1')!
  assert.equal(mine.route, 'chat')
  const idle = mine.clocks.find((c) => c.limit === 'streamIdle')!
  assert.equal(idle.limitMs, 2000)
  assert.ok(idle.elapsedMs >= 0 && idle.elapsedMs < 2000, JSON.stringify(idle))

  const body = await stream.done
  assert.match(body, /id: 6/)
})

test('admin / in headless Chromium: the page updates live and the silence bar starts over on each event', { timeout: 60_000 }, async (t) => {
  const executablePath = chromiumPath()
  if (executablePath === null) return t.skip('chromium is not installed (CI installs it in .ci/run)')
  const { chromium } = await import('playwright-core')
  const dir = await mkdtemp(join(tmpdir(), 'longhaul-live-'))
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] })
  let stream: Awaited<ReturnType<typeof openStream>> | null = null
  try {
    // Events 1.2 s apart against a 2 s streamIdle: the bar climbs towards 60 % and drops back.
    // Enough of them to outlast a slow browser start; the client leaves once the page is checked.
    stream = await openStream('/chat/sse', 30, 1200)
    await stream.firstEvent
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
    await page.goto(`${gw.adminUrl}/`)
    const bar = page.locator('tr[data-id="live-stream-1"] .clock:has(.name:text-is("streamIdle")) .fill')
    await bar.waitFor()
    // Wait for live updates to arrive (the counter is set by the page's own SSE handler).
    await page.waitForFunction(() => Number(document.body.dataset.updates ?? 0) >= 2, undefined, { timeout: 10_000 })
    // Sample the bar's width over 2.5 s: it must rise and then fall back (an event arrived).
    const widths: number[] = []
    const start = Date.now()
    while (Date.now() - start < 2500) {
      widths.push(await bar.evaluate((el) => parseFloat((el as HTMLElement).style.width)))
      await page.waitForTimeout(100)
    }
    // Starting over: a sample below half of the bar's height before it, once it had grown. (Under
    // load a gap between events stretches, so the highest sample may be the last one.)
    let grown = 0
    let startedOver = false
    for (const width of widths) {
      if (grown > 25 && width < grown / 2) startedOver = true
      grown = Math.max(grown, width)
    }
    assert.ok(grown > 25, `the silence bar grows between events: ${widths.join(' ')}`)
    assert.ok(startedOver, `and starts over when an event arrives: ${widths.join(' ')}`)
    const png = join(dir, 'live.png')
    await page.screenshot({ path: png })
    assert.ok((await stat(png)).size > 20_000, 'a rendered page, not a blank one')
    if (process.env.LONGHAUL_SCREENSHOT !== undefined) await (await import('node:fs/promises')).copyFile(png, process.env.LONGHAUL_SCREENSHOT)
    assert.deepEqual([...(await readFile(png)).subarray(1, 4)], [...Buffer.from('PNG')])
    stream.close()
    await stream.done
  } finally {
    // A failed check still ends the stream: its cut must not land after the test as a rejection.
    stream?.close()
    await browser.close()
  }
})

test('with workers: the page and /live show every worker\'s requests, /headroom merges their figures', { timeout: 60_000 }, async () => {
  const pool = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
workers: 2
upstreams: { demo: { endpoints: [${demo.url}] } }
routes:
${prefixRoute('chat', '    timeouts: { streamIdle: 2s, request: 30s }')}
`, { startTimeoutMs: 20_000 })
  try {
    // Two streams on connections of their own, each on whichever worker accepted it.
    const open = (id: string): Promise<{ done: Promise<string> }> => new Promise((resolve, reject) => {
      http.get(`${pool.url}/chat/sse`, { agent: false, headers: { 'x-request-id': id, 'x-demo-chunks': '4', 'x-demo-interval-ms': '500' } }, (res) => {
        let text = ''
        res.setEncoding('utf8')
        resolve({ done: new Promise((settle) => { res.on('data', (d: string) => { text += d }); res.on('end', () => settle(text)) }) })
      }).on('error', reject)
    })
    const streams = await Promise.all([open('pool-1'), open('pool-2')])
    const live = await request(`${pool.adminUrl}/live`)
    let buffered = ''
    for await (const chunk of live.body) {
      buffered += chunk.toString()
      if (buffered.includes('\n\n')) break
    }
    live.body.destroy()
    const snapshot = JSON.parse(/^data: (.*)$/m.exec(buffered)![1]!) as { inflight: Array<{ id: string, worker: number }>, workers: Array<{ id: number, state: string, inflight: number }> }
    assert.deepEqual(snapshot.workers.map((w) => w.state), ['serving', 'serving'])
    const mine = snapshot.inflight.filter((r) => r.id.startsWith('pool-'))
    assert.deepEqual(mine.map((r) => r.id).sort(), ['pool-1', 'pool-2'])
    // Each request is shown on the worker that holds it (the kernel spreads connections over them).
    const ids = snapshot.workers.map((w) => w.id)
    for (const r of mine) assert.ok(ids.includes(r.worker), JSON.stringify(r))
    assert.equal(snapshot.workers.reduce((n, w) => n + w.inflight, 0), snapshot.inflight.length)
    const page = await (await request(`${pool.adminUrl}/`)).body.text()
    assert.match(page, /<table id="workers">/)
    assert.match(page, /<th>worker<\/th><th>request<\/th>/)
    for (const s of streams) assert.match(await s.done, /id: 4/)
    const headroom = await (await request(`${pool.adminUrl}/headroom`)).body.json() as { rows: Array<{ route: string, measure: string, count: number, maxMs: number }> }
    const silence = headroom.rows.find((r) => r.route === 'chat' && r.measure === 'streamSilence')!
    assert.equal(silence.count, 2, 'both workers\' streams, merged')
    assert.ok(silence.maxMs >= 495 && silence.maxMs < 1500, JSON.stringify(silence))
  } finally {
    await pool.stop()
  }
})

test('the page lists at most the oldest requests and says how many there are in all', async () => {
  const { renderSections } = await import('../src/admin/live-page.ts')
  const request = { id: 'r1', method: 'GET', path: '/chat/sse', route: 'chat', upstream: 'demo', endpoint: 'http://127.0.0.1:1', ageMs: 90_000, bytesIn: 0, bytesOut: 10, clocks: [] }
  const html = renderSections({ at: 0, state: 'serving', drain: null, inflight: [request], inflightCount: 5000, outcomes: { windowMinutes: 10, counts: {} }, upstreams: [], headroom: [] })
  assert.match(html, /5000 in flight \(the 1 oldest shown\)/)
  assert.equal(html.match(/<tr data-id=/g)?.length, 1)
})
