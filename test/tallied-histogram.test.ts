// The histograms longhaul observes in plain numbers (observe/tallied-histogram.ts) must read, on
// /metrics and through the workers' aggregation, exactly as prom-client's own Histogram does.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AggregatorRegistry, Histogram, Registry } from 'prom-client'
import { TalliedHistogram } from '../src/observe/tallied-histogram.ts'

const BUCKETS = [0.005, 0.1, 1, 30]
// On a bound, between bounds, below the first, past the last, zero.
const OBSERVED: Array<[string, string, number]> = [
  ['chat', 'ok', 0.005], ['chat', 'ok', 0.05], ['chat', 'ok', 0.001], ['chat', 'ok', 45], ['chat', 'ok', 0],
  ['chat', 'stream_idle_timeout', 30], ['batch', 'ok', 1.5], ['chat', 'ok', 0.1]
]

function prom (): Registry {
  const registry = new Registry()
  const h = new Histogram({ name: 'x_seconds', help: 'Help with "quotes" and \\ a backslash.', labelNames: ['route', 'outcome'], buckets: BUCKETS, registers: [registry] })
  for (const [route, outcome, v] of OBSERVED) h.labels(route, outcome).observe(v)
  return registry
}

function tallied (): { registry: Registry, h: TalliedHistogram } {
  const registry = new Registry()
  const h = new TalliedHistogram({ name: 'x_seconds', help: 'Help with "quotes" and \\ a backslash.', labelNames: ['route', 'outcome'], buckets: BUCKETS, registry })
  for (const [route, outcome, v] of OBSERVED) h.series(route, outcome).observe(v)
  return { registry, h }
}

test('tallied histogram: /metrics text byte for byte as prom-client writes it', async () => {
  const expected = await prom().metrics()
  assert.match(expected, /x_seconds_bucket\{le="0.005",route="chat",outcome="ok"\} 3/)
  assert.equal(await tallied().registry.metrics(), expected)
})

test('tallied histogram: the workers\' aggregation adds it up as prom-client\'s', async () => {
  const expected = AggregatorRegistry.aggregate([await prom().getMetricsAsJSON(), await prom().getMetricsAsJSON()])
  const got = AggregatorRegistry.aggregate([await tallied().registry.getMetricsAsJSON(), await tallied().registry.getMetricsAsJSON()])
  assert.equal(await got.metrics(), await expected.metrics())
  assert.match(await got.metrics(), /x_seconds_count\{route="chat",outcome="ok"\} 12/)
})

test('tallied histogram: a series keeps counting after a reset, which empties the export', async () => {
  const { registry, h } = tallied()
  const kept = h.series('chat', 'ok')
  registry.resetMetrics()
  assert.doesNotMatch(await registry.metrics(), /x_seconds_count/)
  kept.observe(2)
  assert.equal(h.series('chat', 'ok'), kept, 'one series per label set')
  assert.match(await registry.metrics(), /x_seconds_bucket\{le="30",route="chat",outcome="ok"\} 1\n/)
  assert.match(await registry.metrics(), /x_seconds_sum\{route="chat",outcome="ok"\} 2\n/)
  assert.throws(() => h.series('chat'), /x_seconds has 2 labels, got 1 values/)
})
