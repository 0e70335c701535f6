// OpenTelemetry traces (issue 15): with telemetry.otlp configured, an in-test OTLP/HTTP receiver
// gets a server span per request (a child of the client's traceparent), a client span per
// attempt whose context reaches the upstream as traceparent, limit events named as outcomes,
// and the outcome as the status.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { startGateway, prefixRoute, type RunningGateway } from './helpers/gateway.ts'
import { startDemoUpstream, requestEndOf, closedPort, type DemoUpstream } from './helpers/upstreams.ts'

interface OtlpSpan { traceId: string, spanId: string, parentSpanId?: string, name: string, kind: number, attributes: Array<{ key: string, value: Record<string, unknown> }>, events: Array<{ name: string, attributes: Array<{ key: string, value: Record<string, unknown> }> }>, status: { code?: number, message?: string } }

interface MetricsDoc { resourceMetrics: Array<{ scopeMetrics: Array<{ metrics: Array<{ name: string, unit: string, histogram?: { dataPoints: Array<{ count: string | number, sum: number, attributes: OtlpSpan['attributes'] }> } }> }> }> }

const spans: OtlpSpan[] = []
const metricDocs: MetricsDoc[] = []
const arrivals = new Set<() => void>()
let receiver: http.Server
let demo: DemoUpstream
let gw: RunningGateway

after(async () => {
  await gw?.stop()
  await demo?.close()
  receiver?.close()
})

const attr = (s: { attributes: OtlpSpan['attributes'] }, key: string): unknown => {
  const v = s.attributes.find((a) => a.key === key)?.value
  return v === undefined ? undefined : Object.values(v)[0]
}

function spanWhere (match: (s: OtlpSpan) => boolean, timeoutMs = 10_000): Promise<OtlpSpan> {
  const found = spans.find(match)
  if (found !== undefined) return Promise.resolve(found)
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const s = spans.find(match)
      if (s === undefined) return
      clearTimeout(timer)
      arrivals.delete(check)
      resolve(s)
    }
    const timer = setTimeout(() => { arrivals.delete(check); reject(new Error(`no matching span within ${timeoutMs} ms; got ${spans.map((s) => s.name).join(', ')}`)) }, timeoutMs)
    arrivals.add(check)
  })
}

test('traces: request and attempt spans, traceparent upstream, limit events, outcome status', { timeout: 40_000 }, async () => {
  receiver = http.createServer((req, res) => {
    let body = ''
    req.on('data', (d) => { body += d })
    req.on('end', () => {
      assert.match(String(req.headers['content-type']), /^application\/json/)
      if (req.url === '/v1/metrics') {
        metricDocs.push(JSON.parse(body) as MetricsDoc)
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
        return
      }
      assert.equal(req.url, '/v1/traces')
      assert.equal(req.headers['x-api-key'], 'secret')
      const doc = JSON.parse(body) as { resourceSpans: Array<{ resource: { attributes: OtlpSpan['attributes'] }, scopeSpans: Array<{ spans: OtlpSpan[] }> }> }
      for (const rs of doc.resourceSpans) {
        assert.equal(attr(rs.resource, 'service.name'), 'edge-gateway')
        for (const ss of rs.scopeSpans) spans.push(...ss.spans)
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      for (const check of [...arrivals]) check()
    })
  })
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
  const otlp = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`
  demo = await startDemoUpstream({ host: '127.0.0.1', port: 0 })
  const refused = `http://127.0.0.1:${await closedPort()}`
  gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams:
  demo: { endpoints: [${demo.url}] }
  flaky: { endpoints: [${refused}, ${demo.url}], balance: round-robin }
routes:
${prefixRoute('chat', '    timeouts: { firstByte: 2s, streamIdle: 400ms, request: 10s }')}
${prefixRoute('retry', '    timeouts: { request: 10s }', 'flaky')}
telemetry:
  otlp: { endpoint: ${otlp}, serviceName: edge-gateway, headers: { x-api-key: secret } }
`)

  // 1. A healthy request that carries the client's trace context.
  const clientTrace = '0af7651916cd43dd8448eb211c80319c'
  const clientSpan = 'b7ad6b7169203331'
  const ok = request(`${gw.url}/chat/sse`, { headers: { traceparent: `00-${clientTrace}-${clientSpan}-01`, 'x-request-id': 'traced-1', 'x-demo-chunks': '2', 'x-demo-interval-ms': '10' } })
  const seenUpstream = await requestEndOf(demo, 'traced-1')
  const res = await ok
  assert.equal(res.statusCode, 200)
  await res.body.text()
  const server = await spanWhere((s) => attr(s, 'longhaul.request_id') === 'traced-1')
  assert.equal(server.traceId, clientTrace)
  assert.equal(server.parentSpanId, clientSpan)
  assert.equal(server.name, 'GET chat')
  assert.equal(server.kind, 2) // SERVER
  assert.equal(attr(server, 'longhaul.outcome'), 'ok')
  assert.equal(server.status.code, 1) // OK
  assert.ok(server.events.some((e) => e.name === 'limit armed' && attr(e, 'longhaul.limit') === 'firstByte' && attr(e, 'longhaul.limit_ms') === 2000), JSON.stringify(server.events))
  const attempt = await spanWhere((s) => s.parentSpanId === server.spanId)
  assert.equal(attempt.kind, 3) // CLIENT
  assert.equal(attempt.traceId, clientTrace)
  // The upstream got the attempt's context: same trace, the attempt span as parent.
  assert.equal(seenUpstream.headers.traceparent, `00-${clientTrace}-${attempt.spanId}-01`)

  // 2. A stream cut by streamIdle: the limit's firing is an event named as the outcome.
  const cut = await request(`${gw.url}/chat/sse`, { headers: { 'x-request-id': 'traced-2', 'x-demo-stall-after': '1', 'x-demo-chunks': '5', 'x-demo-interval-ms': '10' } })
  await cut.body.text().catch(() => '')
  const cutSpan = await spanWhere((s) => attr(s, 'longhaul.request_id') === 'traced-2')
  assert.equal(attr(cutSpan, 'longhaul.outcome'), 'stream_idle_timeout')
  assert.deepEqual(cutSpan.status, { code: 2, message: 'stream_idle_timeout' })
  const fired = cutSpan.events.find((e) => e.name === 'stream_idle_timeout')
  assert.ok(fired !== undefined, JSON.stringify(cutSpan.events))
  assert.equal(attr(fired, 'longhaul.limit_ms'), 400)
  assert.equal(cutSpan.parentSpanId, undefined, 'no traceparent from the client: a root span')

  // 3. A connect failure retried on the next endpoint: two attempt spans under one request.
  const retried = await request(`${gw.url}/retry/health`, { headers: { 'x-request-id': 'traced-3' } })
  assert.equal(retried.statusCode, 200)
  await retried.body.text()
  const retrySpan = await spanWhere((s) => attr(s, 'longhaul.request_id') === 'traced-3')
  await spanWhere((s) => s.parentSpanId === retrySpan.spanId && s.status.code === 2)
  const attempts = spans.filter((s) => s.parentSpanId === retrySpan.spanId)
  assert.equal(attempts.length, 2, JSON.stringify(attempts.map((a) => [a.name, a.status])))
  assert.deepEqual(attempts.map((a) => attr(a, 'longhaul.attempt')).sort(), [1, 2])
})

test('GenAI metrics: time to first token and token usage under their OpenTelemetry names, flushed at exit', { timeout: 40_000 }, async () => {
  const otlp = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`
  const llm = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams: { demo: { endpoints: [${demo.url}] } }
routes:
${prefixRoute('llm', '    sse: { metrics: true }')}
telemetry:
  otlp: { endpoint: ${otlp}, serviceName: edge-gateway, headers: { x-api-key: secret } }
`)
  const started = performance.now()
  const res = await request(`${llm.url}/llm/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-demo-delay-ms': '300', 'x-demo-chunks': '5', 'x-demo-interval-ms': '10' },
    body: JSON.stringify({ stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'three words here' }] })
  })
  assert.equal(res.statusCode, 200)
  const text = await res.body.text()
  const clientMs = performance.now() - started
  assert.match(text, /"usage"/)
  // A clean stop flushes the last figures (the export interval is 10 s).
  assert.equal(await llm.stop('SIGTERM'), 0)
  const metrics = metricDocs.flatMap((d) => d.resourceMetrics.flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics)))
  const ttft = metrics.find((m) => m.name === 'gen_ai.server.time_to_first_token')
  assert.ok(ttft !== undefined, JSON.stringify(metrics.map((m) => m.name)))
  assert.equal(ttft.unit, 's')
  const point = ttft.histogram!.dataPoints[0]!
  assert.equal(Number(point.count), 1)
  assert.equal(attr(point, 'longhaul.route'), 'llm')
  assert.equal(attr(point, 'gen_ai.operation.name'), 'chat')
  // From the request's arrival: after the upstream's 300 ms delay, before the client saw the end.
  assert.ok(point.sum >= 0.3 && point.sum * 1000 <= clientMs, `${point.sum} s`)
  const usage = metrics.find((m) => m.name === 'gen_ai.client.token.usage')
  assert.ok(usage !== undefined)
  const byType = Object.fromEntries(usage.histogram!.dataPoints.map((p) => [attr(p, 'gen_ai.token.type'), p.sum]))
  assert.deepEqual(byType, { input: 3, output: 5 })
})
