// The token-stream figures under the OpenTelemetry GenAI metric names, exported over OTLP/HTTP
// when telemetry.otlp is configured (routes with sse.metrics feed them, as they feed the
// Prometheus series longhaul_stream_*). The SDK is imported only then.
import type { Histogram } from '@opentelemetry/api'
import type { TelemetryConfig } from '../config/runtime.ts'

/** How often the figures go out; the last ones are flushed at exit. */
const EXPORT_INTERVAL_MS = 10_000

// The buckets the GenAI semantic conventions advise, reaching further for reasoning models.
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60, 120, 300, 600]
const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]

export class GenAiMetrics {
  readonly #timeToFirstToken: Histogram
  readonly #tokenUsage: Histogram
  readonly #shutdown: () => Promise<void>

  private constructor (timeToFirstToken: Histogram, tokenUsage: Histogram, shutdown: () => Promise<void>) {
    this.#timeToFirstToken = timeToFirstToken
    this.#tokenUsage = tokenUsage
    this.#shutdown = shutdown
  }

  /** null when telemetry is not configured: then nothing of the SDK is loaded. */
  static async start (config: TelemetryConfig, version: string): Promise<GenAiMetrics | null> {
    if (config.otlp === null) return null
    const [metrics, exporter, resources] = await Promise.all([
      import('@opentelemetry/sdk-metrics'),
      import('@opentelemetry/exporter-metrics-otlp-http'),
      import('@opentelemetry/resources')
    ])
    const reader = new metrics.PeriodicExportingMetricReader({
      exporter: new exporter.OTLPMetricExporter({ url: `${config.otlp.endpoint.replace(/\/+$/, '')}/v1/metrics`, headers: { ...config.otlp.headers } }),
      exportIntervalMillis: EXPORT_INTERVAL_MS
    })
    const provider = new metrics.MeterProvider({
      resource: resources.resourceFromAttributes({ 'service.name': config.otlp.serviceName, 'service.version': version }),
      readers: [reader]
    })
    const meter = provider.getMeter('longhaul', version)
    return new GenAiMetrics(
      meter.createHistogram('gen_ai.server.time_to_first_token', { unit: 's', description: 'Time from the request\'s arrival at the gateway to the first answer event of its stream.', advice: { explicitBucketBoundaries: TTFT_BUCKETS } }),
      meter.createHistogram('gen_ai.client.token.usage', { unit: '{token}', description: 'Tokens a stream reported in its usage, by gen_ai.token.type (input, output).', advice: { explicitBucketBoundaries: TOKEN_BUCKETS } }),
      async () => {
        await provider.forceFlush()
        await provider.shutdown()
      })
  }

  timeToFirstToken (route: string, ms: number): void {
    this.#timeToFirstToken.record(ms / 1000, { 'gen_ai.operation.name': 'chat', 'longhaul.route': route })
  }

  tokenUsage (route: string, usage: { input: number | null, output: number | null }): void {
    if (usage.input !== null) this.#tokenUsage.record(usage.input, { 'gen_ai.operation.name': 'chat', 'gen_ai.token.type': 'input', 'longhaul.route': route })
    if (usage.output !== null) this.#tokenUsage.record(usage.output, { 'gen_ai.operation.name': 'chat', 'gen_ai.token.type': 'output', 'longhaul.route': route })
  }

  /** Export what is left, then stop (at exit). */
  shutdown (): Promise<void> { return this.#shutdown() }
}
