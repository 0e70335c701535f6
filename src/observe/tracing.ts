// OpenTelemetry traces (telemetry.otlp): a span per request, a child span per attempt at an
// endpoint, events when a limit is armed and when one fires (named as in the outcome
// vocabulary), the outcome as the span's status. W3C traceparent comes in from the client and
// goes upstream as the attempt's context. The SDK is imported only when telemetry is configured,
// so an unconfigured gateway loads none of it and its requests pay one null check.
import type { Span, Tracer, Context, TextMapPropagator } from '@opentelemetry/api'
import type { IncomingHttpHeaders } from 'node:http'
import type { TelemetryConfig } from '../config/runtime.ts'


type Api = typeof import('@opentelemetry/api')

/** A request's span and what its attempts need to open child spans. */
export interface RequestTrace {
  /** A limit's clock started (firstByte, streamIdle …): its value and the outcome it would end the request with. */
  limitArmed (limit: string, outcome: string, ms: number): void
  /** One try at an endpoint: a child span; returns the traceparent to send upstream. */
  attempt (endpoint: string, index: number): AttemptTrace
  /** The request ended: its outcome, status and bytes; a limit that fired is an event first. */
  end (fields: { outcome: string, status: number, route: string | null, upstream: string | null, bytesIn: number, bytesOut: number, limitMs?: number | null }): void
}

export interface AttemptTrace {
  /** W3C traceparent (and tracestate) naming this attempt as the parent, for the upstream request. */
  readonly headers: Record<string, string>
  end (outcome: string | null, status: number | null): void
}

/** Outcomes that are not failures of the request (DESIGN.md §4: ok is the only success). */
const OK = 'ok'

export class Tracing {
  readonly #api: Api
  readonly #tracer: Tracer
  readonly #propagator: TextMapPropagator
  readonly #shutdown: () => Promise<void>

  private constructor (api: Api, tracer: Tracer, propagator: TextMapPropagator, shutdown: () => Promise<void>) {
    this.#api = api
    this.#tracer = tracer
    this.#propagator = propagator
    this.#shutdown = shutdown
  }

  /** null when telemetry is not configured: then nothing of the SDK is loaded. */
  static async start (config: TelemetryConfig, version: string): Promise<Tracing | null> {
    if (config.otlp === null) return null
    const [api, core, base, exporter, resources] = await Promise.all([
      import('@opentelemetry/api'),
      import('@opentelemetry/core'),
      import('@opentelemetry/sdk-trace-base'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources')
    ])
    const processor = new base.BatchSpanProcessor(new exporter.OTLPTraceExporter({
      url: `${config.otlp.endpoint.replace(/\/+$/, '')}/v1/traces`,
      headers: { ...config.otlp.headers }
    }), { scheduledDelayMillis: 1000 })
    const provider = new base.BasicTracerProvider({
      resource: resources.resourceFromAttributes({ 'service.name': config.otlp.serviceName, 'service.version': version }),
      spanProcessors: [processor]
    })
    return new Tracing(api, provider.getTracer('longhaul', version), new core.W3CTraceContextPropagator(), async () => {
      await provider.forceFlush()
      await provider.shutdown()
    })
  }

  /** A span for one request, a child of the client's traceparent when it sent one. */
  request (method: string, headers: IncomingHttpHeaders, requestId: string): RequestTrace {
    const api = this.#api
    const parent = this.#propagator.extract(api.ROOT_CONTEXT, headers, api.defaultTextMapGetter)
    const span = this.#tracer.startSpan(method, {
      kind: api.SpanKind.SERVER,
      attributes: { 'http.request.method': method, 'longhaul.request_id': requestId }
    }, parent)
    const spanContext = api.trace.setSpan(parent, span)
    return new RequestSpan(api, this.#tracer, this.#propagator, span, spanContext, method)
  }

  /** Export what is batched, then stop (at exit). */
  shutdown (): Promise<void> { return this.#shutdown() }
}

class RequestSpan implements RequestTrace {
  readonly #api: Api
  readonly #tracer: Tracer
  readonly #propagator: TextMapPropagator
  readonly #span: Span
  readonly #context: Context
  readonly #method: string

  constructor (api: Api, tracer: Tracer, propagator: TextMapPropagator, span: Span, context: Context, method: string) {
    this.#method = method
    this.#api = api
    this.#tracer = tracer
    this.#propagator = propagator
    this.#span = span
    this.#context = context
  }

  limitArmed (limit: string, outcome: string, ms: number): void {
    this.#span.addEvent('limit armed', { 'longhaul.limit': limit, 'longhaul.outcome': outcome, 'longhaul.limit_ms': ms })
  }

  attempt (endpoint: string, index: number): AttemptTrace {
    const api = this.#api
    const span = this.#tracer.startSpan('attempt', {
      kind: api.SpanKind.CLIENT,
      attributes: { 'server.address': endpoint, 'longhaul.attempt': index }
    }, this.#context)
    const headers: Record<string, string> = {}
    this.#propagator.inject(api.trace.setSpan(this.#context, span), headers, api.defaultTextMapSetter)
    return {
      headers,
      end: (outcome, status) => {
        if (status !== null) span.setAttribute('http.response.status_code', status)
        if (outcome !== null && outcome !== OK) span.setStatus({ code: api.SpanStatusCode.ERROR, message: outcome })
        span.end()
      }
    }
  }

  end (fields: { outcome: string, status: number, route: string | null, upstream: string | null, bytesIn: number, bytesOut: number, limitMs?: number | null }): void {
    const span = this.#span
    if (fields.limitMs !== undefined && fields.limitMs !== null) {
      // The event is named by the outcome, as in the error body, the log line and the metric.
      span.addEvent(fields.outcome, { 'longhaul.outcome': fields.outcome, 'longhaul.limit_ms': fields.limitMs })
    }
    // The span is named like OpenTelemetry's HTTP server spans, with the route for the template.
    if (fields.route !== null) span.updateName(`${this.#method} ${fields.route}`)
    span.setAttributes({
      'longhaul.outcome': fields.outcome,
      'http.response.status_code': fields.status,
      'longhaul.route': fields.route ?? '',
      'longhaul.upstream': fields.upstream ?? '',
      'longhaul.bytes_in': fields.bytesIn,
      'longhaul.bytes_out': fields.bytesOut
    })
    span.setStatus(fields.outcome === OK ? { code: this.#api.SpanStatusCode.OK } : { code: this.#api.SpanStatusCode.ERROR, message: fields.outcome })
    span.end()
  }
}

/**
 * The upstream request's header list (flat name/value pairs) with the attempt's trace context in
 * place of any the client sent: the upstream's parent is the attempt, not the client's span.
 */
export function withTraceContext (headers: string[], context: Readonly<Record<string, string>>): string[] {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!.toLowerCase()
    if (name === 'traceparent' || name === 'tracestate') continue
    out.push(headers[i]!, headers[i + 1]!)
  }
  for (const [name, value] of Object.entries(context)) out.push(name, value)
  return out
}
