// The probe's search and fingerprints as pure functions: a simulated chain (a limit that cuts at
// its value, jitter, a hop that holds instead of cutting) and the error pages of known hops.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { search, toleranceMs, MAX_TRIALS } from '../src/probe/search.ts'
import { fingerprint, sseErrorCode } from '../src/probe/fingerprint.ts'
import { newSeen, type Seen } from '../src/probe/exchange.ts'
import type { TrialResult } from '../src/probe/trial.ts'

const seen = (over: Partial<Seen> = {}): Seen => newSeen({ startedAt: 0, ...over })

/** A chain with one idle-type limit: a trial longer than it is cut at the limit (plus lateMs). */
function chain (limitMs: number | null, lateMs = 0, mode: 'cut' | 'hang' = 'cut'): { trial: (ms: number) => Promise<TrialResult>, tried: number[] } {
  const tried: number[] = []
  return {
    tried,
    trial: async (ms) => {
      tried.push(ms)
      if (limitMs === null || ms < limitMs) return { kind: 'survived', ms, id: 'x', seen: seen() }
      if (mode === 'hang') return { kind: 'hung', ms, id: 'x', seen: seen() }
      return { kind: 'cut', ms, id: 'x', seen: seen(), atMs: limitMs + lateMs, phase: 'mid-body', clean: false }
    },
  }
}

const always = { mayRun: () => true }

test('the precision is ±5 % or ±250 ms, whichever is larger', () => {
  assert.equal(toleranceMs(1000), 250)
  assert.equal(toleranceMs(60_000), 3000)
})

test('grows ×4 from 1 s, then one trial just below the observed cut settles it', async () => {
  const c = chain(30_000)
  const r = await search(c.trial, { maxMs: 600_000, ...always })
  assert.equal(r.status, 'found')
  assert.deepEqual(c.tried, [1000, 4000, 16_000, 64_000, 28_500])
  if (r.status === 'found') assert.equal(r.ms, 30_000)
})

test('a cut that comes late still settles within the precision', async () => {
  const c = chain(2000, 120)
  const r = await search(c.trial, { maxMs: 10_000, ...always })
  assert.equal(r.status, 'found')
  if (r.status === 'found') assert.ok(Math.abs(r.ms - 2000) <= toleranceMs(2000) && r.ms - r.lowMs <= toleranceMs(r.ms))
})

test('a hop that holds the request without cutting it is bisected by midpoints', async () => {
  const c = chain(5000, 0, 'hang')
  const r = await search(c.trial, { maxMs: 20_000, ...always })
  assert.equal(r.status, 'found')
  if (r.status === 'found') {
    assert.ok(r.ms >= 5000 && r.ms - r.lowMs <= toleranceMs(r.ms), JSON.stringify({ ms: r.ms, low: r.lowMs }))
    assert.equal(r.cut.kind, 'hung')
  }
})

test('no limit up to --max: none, after the trial at --max itself', async () => {
  const c = chain(null)
  const r = await search(c.trial, { maxMs: 3000, ...always })
  assert.equal(r.status, 'none')
  assert.deepEqual(c.tried, [1000, 3000])
})

test('the run\'s time bound stops a search, with what it knew', async () => {
  const c = chain(null)
  const r = await search(c.trial, { maxMs: 600_000, mayRun: (ms) => ms <= 4000 })
  assert.equal(r.status, 'unfinished')
  if (r.status === 'unfinished') assert.equal(r.lowMs, 4000)
})

test('cuts at random times never settle: unfinished after a bounded number of trials', async () => {
  let n = 0
  const r = await search(async (ms) => ({ kind: 'cut', ms, id: 'x', seen: seen(), atMs: (n++ % 2) * 2000 + 3000, phase: 'mid-body', clean: false }), { maxMs: 10_000, mayRun: (ms) => ms > 0 })
  assert.ok(r.trials.length <= MAX_TRIALS)
})

test('fingerprints: the hop that wrote the error wins over the Server header of the outer hop', () => {
  const haproxy504 = '<html><body><h1>504 Gateway Time-out</h1>\nThe server didn\'t respond in time.\n</body></html>\n'
  assert.deepEqual(fingerprint(seen({ status: 504, headers: { server: 'nginx/1.22.1' }, body: haproxy504 }))?.hop, 'haproxy')
  const nginx504 = '<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n'
  assert.deepEqual(fingerprint(seen({ status: 504, headers: { server: 'nginx/1.22.1' }, body: nginx504 })), { hop: 'nginx', by: 'nginx error page: 504 Gateway Time-out', maker: true })
  assert.equal(fingerprint(seen({ status: 502, headers: { server: 'awselb/2.0' }, body: '<html><body><center><h1>502 Bad Gateway</h1></center><hr><center>awselb/2.0</center></body></html>' }))?.hop, 'aws-alb')
  assert.equal(fingerprint(seen({ status: 524, headers: { server: 'cloudflare', 'cf-ray': '8a1b2c3d4e5f-AMS' }, body: 'A timeout occurred' }))?.hop, 'cloudflare')
  assert.equal(fingerprint(seen({ status: 504, headers: {}, body: 'upstream request timeout' }))?.hop, 'gclb')
  assert.deepEqual(fingerprint(seen({ status: 504, headers: { 'proxy-status': 'app; received-status=200, "edge-lb"; error=http_response_timeout' } })), { hop: 'edge-lb', by: 'Proxy-Status: "edge-lb"; error=http_response_timeout', maker: true })
  assert.deepEqual(fingerprint(seen({ status: 504, headers: { 'x-longhaul-error': 'first_byte_timeout', server: 'nginx' } }))?.by, 'x-longhaul-error: first_byte_timeout')
  // A response of the target itself names only the hops it passed, not a maker.
  assert.deepEqual(fingerprint(seen({ status: 200, headers: { 'x-longhaul-probe': 'p1', via: '1.1 varnish, 1.1 google' }, body: '<hr><center>nginx</center>' })), { hop: 'google', by: 'Via: 1.1 varnish, 1.1 google', maker: false })
  assert.equal(fingerprint(seen({ status: 504 })), null)
})

test('the SSE error record names the outcome, in today\'s form and the SDK dialect', () => {
  assert.equal(sseErrorCode('event: probe\ndata: start p\n\nevent: longhaul-error\ndata: {"code":"stream_idle_timeout","limitMs":1000}\n\n'), 'stream_idle_timeout')
  assert.equal(sseErrorCode('event: error\ndata: {"type":"error","error":{"type":"timeout","code":"request_timeout"}}\n\n'), 'request_timeout')
  assert.equal(sseErrorCode('\ndata: {"error":{"message":"x","code":"stream_idle_timeout"}}\n\n'), 'stream_idle_timeout')
  assert.equal(sseErrorCode('event: probe\ndata: end p\n\n'), null)
})
