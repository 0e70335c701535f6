// Endpoint health end to end (DESIGN.md §3 `outlier`, `healthCheck`; §7 /status; §8 metrics and
// logs; SCENARIOS.md 4): passive outlier ejection that grows on repeat, a killed endpoint that
// leaves rotation without a client noticing, active health checks that take an endpoint out and
// bring it back, and panic mode when no endpoint is left. What the gateway decided is read from
// its log lines, /status and longhaul_upstream_endpoint_up, and checked against where the
// requests went (the access line's endpoint).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import { startGateway, type RunningGateway, type LogLine } from './helpers/gateway.ts'
import { startDemoUpstream, type DemoUpstream } from './helpers/upstreams.ts'
import { endpointOf, metric, startSwitchableUpstream, upstreamStatus, type SwitchableUpstream } from './helpers/resilience.ts'

const CHECK = '{ path: /health, interval: 200ms, timeout: 100ms, unhealthyThreshold: 2, healthyThreshold: 2 }'

let demo: DemoUpstream
let killed: DemoUpstream
let killedUnderLoad: DemoUpstream
let flaky: SwitchableUpstream
let repeat: SwitchableUpstream
let checked: SwitchableUpstream
let panicA: SwitchableUpstream
let panicB: SwitchableUpstream
let gw: RunningGateway

before(async () => {
  ;[demo, killed, killedUnderLoad] = await Promise.all([startDemoUpstream(), startDemoUpstream(), startDemoUpstream()])
  ;[flaky, repeat, checked, panicA, panicB] = await Promise.all([startSwitchableUpstream(), startSwitchableUpstream(), startSwitchableUpstream(), startSwitchableUpstream(), startSwitchableUpstream()])
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams:
  flaky: { endpoints: [${flaky.url}, ${demo.url}], outlier: { consecutiveFailures: 5, ejectFor: 30s } }
  repeat: { endpoints: [${repeat.url}, ${demo.url}], outlier: { consecutiveFailures: 3, ejectFor: 300ms, maxEjectFor: 500ms } }
  killed: { endpoints: [${killed.url}, ${demo.url}] }
  killedload: { endpoints: [${killedUnderLoad.url}, ${demo.url}] }
  checked: { endpoints: [${checked.url}, ${demo.url}], healthCheck: ${CHECK} }
  allbad: { endpoints: [${panicA.url}, ${panicB.url}], healthCheck: ${CHECK} }
routes:
  - { name: flaky, match: { pathPrefix: /flaky/ }, upstream: flaky, rewrite: { stripPrefix: /flaky } }
  - { name: repeat, match: { pathPrefix: /repeat/ }, upstream: repeat, rewrite: { stripPrefix: /repeat } }
  - { name: killed, match: { pathPrefix: /killed/ }, upstream: killed, rewrite: { stripPrefix: /killed } }
  - name: killedload
    match: { pathPrefix: /killedload/ }
    upstream: killedload
    rewrite: { stripPrefix: /killedload }
    retry: { on: [connect-failure, reset-before-response] }
  - { name: checked, match: { pathPrefix: /checked/ }, upstream: checked, rewrite: { stripPrefix: /checked } }
  - { name: allbad, match: { pathPrefix: /allbad/ }, upstream: allbad, rewrite: { stripPrefix: /allbad } }
`)
})

after(async () => {
  await gw?.stop()
  await Promise.all([demo, killed, killedUnderLoad, flaky, repeat, checked, panicA, panicB].map((u) => u?.close()))
})

interface Sent { status: number, endpoint: string, attempts: number, line: LogLine }

async function get (prefix: string): Promise<Sent> {
  const id = randomUUID()
  const res = await request(`${gw.url}${prefix}/headers`, { headers: { 'x-request-id': id } })
  await res.body.dump()
  const line = await gw.accessLine(id)
  return { status: res.statusCode, endpoint: line.endpoint as string, attempts: line.attempts as number, line }
}

const outOfRotation = (url: string) => (l: LogLine): boolean => l.msg === 'endpoint out of rotation' && l.endpoint === url
const backInRotation = (url: string) => (l: LogLine): boolean => l.msg === 'endpoint back in rotation' && l.endpoint === url

/** The next log line that matches, not counting those already logged. */
function nextLine (match: (l: LogLine) => boolean, timeoutMs = 5000): Promise<LogLine> {
  const seen = new Set(gw.lines.filter(match))
  return gw.waitForLine((l) => match(l) && !seen.has(l), timeoutMs)
}

const endpointUp = (upstream: string, endpoint: string): Promise<number> => metric(gw, 'longhaul_upstream_endpoint_up', { upstream, endpoint })

/** Sends requests one at a time until `done` holds (checked after each), at most `max`. */
async function sendUntil (prefix: string, done: () => boolean, max = 60): Promise<Sent[]> {
  const sent: Sent[] = []
  while (!done() && sent.length < max) sent.push(await get(prefix))
  assert.ok(done(), `not done after ${max} requests`)
  return sent
}

test('an endpoint that answers 503 five times in a row is ejected: /status, metric, log, and traffic goes elsewhere', async () => {
  assert.equal(await endpointUp('flaky', flaky.url), 1)
  flaky.status = 503
  const ejected = outOfRotation(flaky.url)
  const before = await sendUntil('/flaky', () => gw.lines.some(ejected))
  assert.equal(flaky.requests.length, 5, 'five failures in a row, not one more')
  assert.equal(before.filter((s) => s.endpoint === flaky.url && s.status === 503).length, 5)
  const line = gw.lines.find(ejected)!
  assert.equal(line.upstream, 'flaky')
  assert.match(String(line.reason), /^ejected for 30000ms after 5 failures in a row \(last: status 503\)$/)

  const status = await upstreamStatus(gw, 'flaky')
  const e = endpointOf(status, flaky.url)
  assert.equal(e.healthy, false)
  assert.ok(e.ejectedForMs !== undefined && e.ejectedForMs > 25_000 && e.ejectedForMs <= 30_000, JSON.stringify(e))
  assert.equal(endpointOf(status, demo.url).healthy, true)
  assert.equal(endpointOf(status, demo.url).ejectedForMs, undefined)
  assert.equal(status.panic, false)
  assert.equal(await endpointUp('flaky', flaky.url), 0)
  assert.equal(await endpointUp('flaky', demo.url), 1)

  for (let i = 0; i < 20; i++) {
    const s = await get('/flaky')
    assert.equal(s.status, 200, JSON.stringify(s.line))
    assert.equal(s.endpoint, demo.url)
    assert.equal(s.attempts, 1)
  }
  assert.equal(flaky.requests.length, 5, 'the ejected endpoint got no new request')
})

test('ejections in a row last longer (ejectFor × n, capped by maxEjectFor); a success after a return starts over', async () => {
  repeat.status = 503
  const ejected = outOfRotation(repeat.url)
  const ejections = (): LogLine[] => gw.lines.filter(ejected)
  await sendUntil('/repeat', () => ejections().length >= 1)
  assert.match(String(ejections()[0]!.reason), /^ejected for 300ms after 3 failures in a row \(last: status 503\)$/)
  const back = await nextLine(backInRotation(repeat.url))
  assert.equal(back.reason, 'ejection ended')
  assert.equal(await endpointUp('repeat', repeat.url), 1)

  // Back, and failing again at once: the second ejection would last 600 ms, capped at 500 ms.
  await sendUntil('/repeat', () => ejections().length >= 2)
  assert.match(String(ejections()[1]!.reason), /^ejected for 500ms after 3 failures in a row/)
  const e = endpointOf(await upstreamStatus(gw, 'repeat'), repeat.url)
  assert.ok(e.healthy === false && e.ejectedForMs !== undefined && e.ejectedForMs <= 500, JSON.stringify(e))

  // Healthy again: once it is back, its first success ends the streak of ejections.
  repeat.status = 200
  await nextLine(backInRotation(repeat.url))
  const served = repeat.requests.length
  await sendUntil('/repeat', () => repeat.requests.length > served)
  repeat.status = 503
  await sendUntil('/repeat', () => ejections().length >= 3)
  assert.match(String(ejections()[2]!.reason), /^ejected for 300ms after 3 failures in a row/)
})

test('a killed endpoint is ejected and traffic goes on with zero client-visible failures', async () => {
  const warm = []
  for (let i = 0; i < 10; i++) warm.push(await get('/killed'))
  assert.ok(warm.some((s) => s.endpoint === killed.url), 'both endpoints served before the kill')
  await killed.close()

  const ejected = outOfRotation(killed.url)
  const during = await sendUntil('/killed', () => gw.lines.some(ejected))
  const after = []
  for (let i = 0; i < 20; i++) after.push(await get('/killed'))
  for (const s of [...during, ...after]) {
    assert.equal(s.status, 200, JSON.stringify(s.line))
    assert.equal(s.endpoint, demo.url, JSON.stringify(s.line))
  }
  // Each refused connect was retried on the live endpoint (retry defaults), five of them eject.
  assert.equal(during.filter((s) => s.attempts === 2).length, 5, JSON.stringify(during.map((s) => s.attempts)))
  assert.match(String(gw.lines.find(ejected)!.reason), /after 5 failures in a row \(last: ECONNREFUSED\)/)
  assert.ok(after.every((s) => s.attempts === 1), 'no more tries at the ejected endpoint')
  assert.equal(endpointOf(await upstreamStatus(gw, 'killed'), killed.url).healthy, false)
  assert.equal(await endpointUp('killed', killed.url), 0)
})

test('a killed endpoint under concurrent load: zero client-visible failures for idempotent requests', async () => {
  const results: Sent[] = []
  let stop = false
  const loop = async (): Promise<void> => {
    while (!stop) results.push(await get('/killedload'))
  }
  // Three clients: the retry budget always allows 3 retries in flight, so every failure can be
  // retried; with more clients failing at the same moment the budget may refuse one (retries.test.ts).
  const loops = Array.from({ length: 3 }, () => loop())
  try {
    const ejected = outOfRotation(killedUnderLoad.url)
    // Kill it in the middle of the traffic, while requests are on their way to it.
    await new Promise<void>((resolve) => {
      const listener = (): void => {
        if (results.length < 20) return
        killedUnderLoad.events.off('request', listener)
        resolve()
      }
      killedUnderLoad.events.on('request', listener)
    })
    await killedUnderLoad.close()
    await gw.waitForLine(ejected)
    const at = results.length
    while (results.length < at + 40) await get('/killedload').then((s) => results.push(s))
  } finally {
    stop = true
    await Promise.all(loops)
  }
  const failures = results.filter((s) => s.status !== 200)
  assert.deepEqual(failures.map((s) => s.line), [], 'no client saw a failure')
  assert.ok(results.some((s) => s.attempts === 2), 'some requests were saved by a retry')
})

test('active health checks take an endpoint out of rotation and bring it back', async () => {
  const up = checked.url
  checked.health = 503
  const out = await nextLine(outOfRotation(up))
  assert.equal(out.reason, 'health check /health answered 503')
  let e = endpointOf(await upstreamStatus(gw, 'checked'), up)
  assert.equal(e.healthy, false)
  assert.equal(e.ejectedForMs, undefined, 'an unhealthy endpoint is not an ejected one')
  assert.equal(await endpointUp('checked', up), 0)
  const served = checked.requests.length
  for (let i = 0; i < 10; i++) {
    const s = await get('/checked')
    assert.equal(s.status, 200)
    assert.equal(s.endpoint, demo.url)
  }
  assert.equal(checked.requests.length, served, 'no request went to the unhealthy endpoint')

  checked.health = 200
  const back = await nextLine(backInRotation(up))
  assert.equal(back.reason, 'health check /health answered 200')
  e = endpointOf(await upstreamStatus(gw, 'checked'), up)
  assert.equal(e.healthy, true)
  assert.equal(await endpointUp('checked', up), 1)
  await sendUntil('/checked', () => checked.requests.length > served)
})

test('a health check that takes longer than its timeout fails', async () => {
  const up = checked.url
  checked.healthDelayMs = 300
  const out = await nextLine(outOfRotation(up))
  assert.match(String(out.reason), /^health check \/health failed: \S+$/)
  assert.doesNotMatch(String(out.reason), /failed: \d+$/, 'the reason names the failure, not a numeric code')
  assert.equal(endpointOf(await upstreamStatus(gw, 'checked'), up).healthy, false)
  checked.healthDelayMs = 0
  await nextLine(backInRotation(up))
  assert.equal(endpointOf(await upstreamStatus(gw, 'checked'), up).healthy, true)
})

test('panic mode: with every endpoint unhealthy, requests still go to them, and the log and /status say so', async () => {
  panicA.health = 503
  panicB.health = 503
  await Promise.all([nextLine(outOfRotation(panicA.url)), nextLine(outOfRotation(panicB.url))])
  assert.equal(await endpointUp('allbad', panicA.url), 0)
  assert.equal(await endpointUp('allbad', panicB.url), 0)

  const panicOn = nextLine((l) => l.msg.startsWith('every endpoint of the upstream is out of rotation') && l.upstream === 'allbad')
  const sent: Sent[] = []
  for (let i = 0; i < 16; i++) sent.push(await get('/allbad'))
  assert.deepEqual(sent.map((s) => s.status), Array(16).fill(200), 'failing every request would be worse')
  assert.ok(sent.some((s) => s.endpoint === panicA.url) && sent.some((s) => s.endpoint === panicB.url), 'both endpoints are used')
  const line = await panicOn
  assert.equal(line.level, 50, 'an error-level line')
  const status = await upstreamStatus(gw, 'allbad')
  assert.equal(status.panic, true)
  assert.deepEqual(status.endpoints.map((e) => e.healthy), [false, false])
  assert.equal(gw.lines.filter((l) => l.msg.startsWith('every endpoint of the upstream is out of rotation') && l.upstream === 'allbad').length, 1, 'said once, not per request')

  panicA.health = 200
  await nextLine(backInRotation(panicA.url))
  const panicOff = nextLine((l) => l.msg === 'the upstream has endpoints in rotation again' && l.upstream === 'allbad')
  const served = panicB.requests.length
  for (let i = 0; i < 6; i++) assert.equal((await get('/allbad')).endpoint, panicA.url)
  assert.equal(panicB.requests.length, served, 'out of panic, the unhealthy endpoint gets nothing')
  await panicOff
  assert.equal((await upstreamStatus(gw, 'allbad')).panic, false)
})
