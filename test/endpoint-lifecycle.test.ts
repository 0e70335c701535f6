// An endpoint's pools over its life, in process: a burst of stale-connection resets from one pool
// lowers its idle time once (not once per reset), and a retired upstream or an endpoint a DNS
// answer removed closes its pool only once nothing is in flight on it or waiting for it, so no
// request is sent to a closed pool (undici's UND_ERR_CLOSED / UND_ERR_DESTROYED).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { errors } from 'undici'
import { parseConfigText } from '../src/config/load.ts'
import { UpstreamService, type UpstreamObserver } from '../src/upstream/service.ts'
import { classifyFailure } from '../src/gateway/classify.ts'

const observer: UpstreamObserver = { endpointChanged () {}, panic () {}, queueDepth () {}, endpointsChanged () {}, dnsFailed () {} }

/** An upstream of one endpoint (nothing listens there: these tests never send a request). */
function service (settings: string): UpstreamService {
  const { config } = parseConfigText(`
upstreams: { u: { endpoints: [http://127.0.0.1:9], ${settings} } }
routes: [{ name: r, match: { pathPrefix: / }, upstream: u }]
`, 'test.yaml')
  return new UpstreamService(config.upstreams.u!, observer)
}

const closed = (pool: unknown): boolean => (pool as { closed: boolean }).closed

test('a burst of stale resets from one pool lowers its idle time once, and builds one new pool', async () => {
  const upstream = service('idleTimeout: 4s')
  const endpoint = upstream.endpoints[0]!
  const first = endpoint.pool
  assert.equal(endpoint.lowerIdleAfterStale(first), 2000)
  const second = endpoint.pool
  assert.notEqual(second, first)
  for (let i = 0; i < 5; i++) assert.equal(endpoint.lowerIdleAfterStale(first), null, 'the rest of the burst came from the replaced pool')
  assert.equal(endpoint.pool, second)
  // The new pool proving stale too is a new observation.
  assert.equal(endpoint.lowerIdleAfterStale(second), 1000)
  await upstream.close()
})

test('a retired upstream closes its pool only once the request in flight and the one queued for its connection are done', async () => {
  const upstream = service('maxConnectionsPerEndpoint: 1')
  const endpoint = upstream.endpoints[0]!
  const started: string[] = []
  assert.equal(endpoint.acquire(() => started.push('first'), () => assert.fail('no timeout')), null)
  const ticket = endpoint.acquire(() => started.push('second'), () => assert.fail('no timeout'))
  assert.notEqual(ticket, null, 'the second waits for the one connection')
  let retired = false
  const retiring = upstream.retire().then(() => { retired = true })
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(closed(endpoint.pool), false, 'not closed under a request in flight')
  endpoint.release()
  assert.deepEqual(started, ['first', 'second'])
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(closed(endpoint.pool), false, 'not closed under the request that waited')
  assert.equal(retired, false)
  endpoint.release()
  await retiring
  assert.equal(closed(endpoint.pool), true)
  assert.equal(endpoint.inflight, 0)
})

test('a dispatch on a closed pool is a connect-like failure, retried elsewhere, never an upstream reset', () => {
  for (const err of [new errors.ClientClosedError(), new errors.ClientDestroyedError()]) {
    const failure = classifyFailure(err, false)
    assert.equal(failure.kind, 'connect', err.name)
    assert.equal(failure.ending.outcome, 'upstream_unavailable')
    assert.match(failure.ending.detail!, /pool was closed/)
  }
})
