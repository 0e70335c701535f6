// The attempt loop (gateway/attempts.ts) and the balancers (upstream/balancer.ts) in process, with
// scripted endpoints and an injected random: which endpoint each try goes to, what is retried,
// that only the winning try reaches the request, and that every endpoint slot and retry budget
// share is given back. retries.test.ts and balancing.test.ts show the same through real sockets.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Dispatcher } from 'undici'
import { Attempts, type ResponseHeaders, type WinningTry } from '../src/gateway/attempts.ts'
import { GatewayAbort, TryReplaced, type Failure } from '../src/gateway/classify.ts'
import { LeastRequest, RoundRobin } from '../src/upstream/balancer.ts'
import type { RouteConfig, RetryPolicy } from '../src/config/runtime.ts'
import type { UpstreamService } from '../src/upstream/service.ts'

/** What one try at a scripted endpoint does: fail before any byte, or answer. */
type Script = { error: string } | { status: number, headers?: ResponseHeaders, body?: string[], resetAfterBody?: boolean }

class FakeController {
  aborted: Error | null = null
  abort (reason: Error): void { this.aborted = reason }
  pause (): void {}
  resume (): void {}
}

class FakeEndpoint {
  readonly url: string
  readonly scripts: Script[]
  readonly controllers: FakeController[] = []
  inflight = 0
  /** No maxConnectionsPerEndpoint: a try never waits for a connection. */
  readonly connectionSlots = null
  constructor (url: string, scripts: Script[]) {
    this.url = url
    this.scripts = scripts
  }

  acquire (start: () => void): null {
    this.inflight++
    start()
    return null
  }
  release (): void { this.inflight-- }
  lowerIdleAfterStale (): number | null { return null }
  checkKeepAliveHint (): string | null { return null }
  readonly pool = {
    dispatch: (_options: unknown, handler: Dispatcher.DispatchHandler): void => {
      const script = this.scripts.shift() ?? { status: 200 }
      const ctl = new FakeController()
      this.controllers.push(ctl)
      const c = ctl as unknown as Dispatcher.DispatchController
      handler.onRequestStart?.(c, {})
      if ('error' in script) return handler.onResponseError?.(c, Object.assign(new Error(script.error), { code: script.error }))
      handler.onResponseStart?.(c, script.status, script.headers ?? {}, '')
      if (ctl.aborted !== null) return handler.onResponseError?.(c, ctl.aborted)
      for (const chunk of script.body ?? []) handler.onResponseData?.(c, Buffer.from(chunk))
      if (script.resetAfterBody === true) return handler.onResponseError?.(c, Object.assign(new Error('reset'), { code: 'ECONNRESET' }))
      handler.onResponseEnd?.(c, {})
    }
  }
}

class FakeUpstream {
  readonly endpoints: FakeEndpoint[]
  readonly failures: string[] = []
  retriesHeld = 0
  constructor (endpoints: FakeEndpoint[]) { this.endpoints = endpoints }
  /** In order, skipping the ones tried (like the real one when every endpoint is available). */
  pick (tried?: ReadonlySet<unknown>): FakeEndpoint | undefined {
    return this.endpoints.find((e) => tried?.has(e) !== true) ?? this.endpoints[0]
  }

  failed (e: FakeEndpoint, reason: string): void { this.failures.push(`${e.url} ${reason}`) }
  succeeded (): void {}
  retryBudgetAllows (): boolean { return true }
  holdRetry (): void { this.retriesHeld++ }
  releaseRetry (): void { this.retriesHeld-- }
}

const POLICY: RetryPolicy = { attempts: 3, onConnectFailure: true, onReset: true, onErrorEvent: false, onFirstEventTimeout: false, onStatus: new Set([503]), backoffBaseMs: 100, backoffMaxMs: 1000, budget: 0.2, nonIdempotent: false, maxBufferedBody: 65536 }

class Recorder implements WinningTry {
  readonly events: string[] = []
  failure: Failure | null = null
  onResponseStart (_c: Dispatcher.DispatchController, status: number): void { this.events.push(`start ${status}`) }
  onResponseData (_c: Dispatcher.DispatchController, chunk: Buffer): void { this.events.push(`data ${chunk.toString()}`) }
  onResponseEnd (): void { this.events.push('end') }
  onResponseError (failure: Failure): void {
    this.failure = failure
    this.events.push(`error ${failure.ending.outcome}`)
  }
}

function run (endpoints: FakeEndpoint[], policy: Partial<RetryPolicy> = {}, random = (): number => 0, upstream = new FakeUpstream(endpoints)) {
  const handler = new Recorder()
  const retried: string[] = []
  const failed: unknown[] = []
  const route = { name: 'r', retry: { ...POLICY, ...policy } } as unknown as RouteConfig
  const attempts = new Attempts(upstream as unknown as UpstreamService, route, '/p', {
    method: 'GET',
    headers: () => ({}),
    body: null,
    replayable: () => true
  }, handler, { retried: (reason) => retried.push(reason), upstreamWarning: () => {}, guarded: (step) => {
    try { step() } catch (err) { failed.push(err) }
  } }, random)
  attempts.start()
  return { upstream, handler, retried, failed, attempts }
}

test('a refused connect is retried on the next endpoint; only its answer reaches the request; every slot is given back', () => {
  const a = new FakeEndpoint('a', [{ error: 'ECONNREFUSED' }])
  const b = new FakeEndpoint('b', [{ status: 200, body: ['hi'] }])
  const { upstream, handler, retried, attempts } = run([a, b])
  assert.deepEqual(handler.events, ['start 200', 'data hi', 'end'])
  assert.deepEqual(retried, ['connect_failure'])
  assert.equal(attempts.count, 2)
  assert.equal(attempts.endpoint, b as unknown)
  assert.deepEqual(upstream.failures, ['a ECONNREFUSED'])
  assert.equal(a.inflight + b.inflight, 0)
  assert.equal(upstream.retriesHeld, 0, 'a connect-failure retry is outside the budget')
})

test('a status retry replaces its try with TryReplaced, not a made-up outcome; the retry holds and gives back its budget share', () => {
  const a = new FakeEndpoint('a', [{ status: 503, body: ['busy'] }])
  const b = new FakeEndpoint('b', [{ status: 200, body: ['ok'] }])
  const { upstream, handler, retried } = run([a, b])
  assert.ok(a.controllers[0]!.aborted instanceof TryReplaced, String(a.controllers[0]!.aborted))
  assert.ok(!(a.controllers[0]!.aborted instanceof GatewayAbort))
  assert.deepEqual(handler.events, ['start 200', 'data ok', 'end'], 'the replaced answer never reaches the request')
  assert.deepEqual(retried, ['status_503'])
  assert.equal(upstream.retriesHeld, 0)
  assert.equal(a.inflight + b.inflight, 0)
})

test('after the response started nothing is retried: the failure ends the request as upstream_reset', () => {
  const a = new FakeEndpoint('a', [{ status: 200, body: ['x'], resetAfterBody: true }])
  const b = new FakeEndpoint('b', [])
  const { handler, retried } = run([a, b])
  assert.deepEqual(handler.events, ['start 200', 'data x', 'error upstream_reset'])
  assert.equal(handler.failure!.ending.detail, 'after the response started')
  assert.deepEqual(retried, [])
  assert.equal(b.controllers.length, 0)
})

test('the retry policy runs out: the last failure ends the request with its own outcome', () => {
  const a = new FakeEndpoint('a', [{ error: 'ECONNREFUSED' }, { error: 'ECONNREFUSED' }])
  const { handler, attempts } = run([a], { attempts: 2 })
  assert.deepEqual(handler.events, ['error upstream_unavailable'])
  assert.equal(attempts.count, 2)
  assert.equal(a.inflight, 0)
})

test('the backoff uses the injected random, and a request that ends during it sends no more tries', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  const a = new FakeEndpoint('a', [{ error: 'ECONNRESET' }])
  const b = new FakeEndpoint('b', [{ status: 200 }])
  const { upstream, handler, attempts } = run([a, b], {}, () => 0.5)
  // Full jitter: random × base·2^(n-1) = 0.5 × 100 ms after the first try.
  t.mock.timers.tick(49)
  assert.equal(b.controllers.length, 0)
  assert.equal(upstream.retriesHeld, 1, 'the decided retry holds its budget share while it waits')
  attempts.end({ outcome: 'client_aborted' })
  assert.equal(upstream.retriesHeld, 0)
  t.mock.timers.tick(1000)
  assert.equal(b.controllers.length, 0, 'no try after the end')
  assert.deepEqual(handler.events, [])
  assert.equal(a.inflight + b.inflight, 0)
})

test('a throw in the try sent after a backoff (a timer, no caller to catch it) is handed to the request as its failure', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  const a = new FakeEndpoint('a', [{ error: 'ECONNRESET' }])
  const defect = new Error('a defect in choosing the endpoint')
  // The first pick works; the retry's pick throws, from the backoff's timer.
  const upstream = new class extends FakeUpstream {
    picks = 0
    override pick (tried?: ReadonlySet<unknown>): FakeEndpoint | undefined {
      if (++this.picks > 1) throw defect
      return super.pick(tried)
    }
  }([a])
  const { failed, handler } = run([a], {}, () => 0.5, upstream)
  assert.deepEqual(failed, [])
  t.mock.timers.tick(50)
  assert.deepEqual(failed, [defect])
  assert.deepEqual(handler.events, [])
  assert.equal(a.inflight, 0)
})

test('no endpoint at all: upstream_unavailable, no try', () => {
  const { handler, attempts } = run([])
  assert.deepEqual(handler.events, ['error upstream_unavailable'])
  assert.equal(attempts.count, 0)
})

test('least-request: two distinct endpoints by the random, the one with fewer requests in flight', () => {
  const e = [{ inflight: 5 }, { inflight: 1 }, { inflight: 3 }]
  const draws = [0, 0] // the same draw twice still gives two distinct endpoints: 0 and 1
  const lr = new LeastRequest<{ inflight: number }>(() => draws.shift()!)
  assert.equal(lr.pick(e), e[1])
  const tie = new LeastRequest<{ inflight: number }>(() => 0.99)
  assert.equal(tie.pick([{ inflight: 2 }, { inflight: 2 }])!.inflight, 2)
  assert.equal(new LeastRequest().pick([e[0]!]), e[0])
  assert.equal(new LeastRequest().pick([]), undefined)
  // Every pair of draws picks two distinct endpoints.
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 2; j++) {
      const seen: number[] = []
      const seq = [i / 3, j / 2]
      const probe = new LeastRequest<{ inflight: number, id: number }>(() => seq.shift()!)
      const ids = [{ inflight: 0, id: 0 }, { inflight: 0, id: 1 }, { inflight: 0, id: 2 }]
      const proxy = ids.map((x) => ({ get inflight () { seen.push(x.id); return x.inflight }, id: x.id }))
      probe.pick(proxy)
      assert.equal(new Set(seen).size, 2, `draws ${i / 3}, ${j / 2} compared ${JSON.stringify(seen)}`)
    }
  }
})

test('round-robin: in turn, and over a list that shrank', () => {
  const rr = new RoundRobin<{ inflight: number, id: string }>()
  const list = ['a', 'b', 'c'].map((id) => ({ inflight: 0, id }))
  assert.deepEqual([1, 2, 3, 4].map(() => rr.pick(list)!.id), ['a', 'b', 'c', 'a'])
  assert.equal(rr.pick(list.slice(0, 1))!.id, 'a')
  assert.equal(rr.pick([]), undefined)
})
