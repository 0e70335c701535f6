// The resolved, immutable, fully typed configuration. Everything below config/ reads only this:
// limits in milliseconds, `null` meaning unlimited, every default already applied.

export type LimitSource = 'default' | 'defaults' | 'route' | 'client'

export interface Limit {
  readonly ms: number | null
  readonly source: LimitSource
}

export interface RouteTimeouts {
  readonly firstByte: Limit
  /** firstByte was not written anywhere: it follows the request's effective limit (client deadline included). */
  readonly firstByteFollowsRequest: boolean
  readonly streamIdle: Limit
  /** Response headers to the first event that carries an answer. */
  readonly firstEvent: Limit
  /** firstEvent was not written anywhere: it follows streamIdle (one clock from the headers on, as before it existed). */
  readonly firstEventFollowsStreamIdle: boolean
  readonly request: Limit
  readonly maxClientTimeout: Limit
  /** Silence in both directions of a WebSocket tunnel. */
  readonly tunnelIdle: Limit
}

export interface RouteConfig {
  readonly name: string
  readonly index: number
  readonly match: {
    readonly pathPrefix: string
    readonly methods: readonly string[] | null
    readonly host: string | null
  }
  readonly upstream: string
  readonly timeouts: RouteTimeouts
  readonly sse: {
    readonly errorEvent: boolean
    /** The SSE heartbeat interval; null = off. */
    readonly heartbeatMs: number | null
    /** Parse event streams for the token-stream metrics. */
    readonly metrics: boolean
    /** The first-event gate: hold response headers at most this long; null = off. */
    readonly holdHeadersMs: number | null
  }
  readonly stripPrefix: string | null
  readonly retry: RetryPolicy
}

export interface RetryPolicy {
  /** Tries in all, the first included. */
  readonly attempts: number
  readonly onConnectFailure: boolean
  readonly onReset: boolean
  /** An in-band error record before the first event, seen while sse.holdHeaders holds the headers. */
  readonly onErrorEvent: boolean
  /** A firstEvent cut while sse.holdHeaders holds the headers. */
  readonly onFirstEventTimeout: boolean
  /** Status codes that are retried, as numbers. */
  readonly onStatus: ReadonlySet<number>
  readonly backoffBaseMs: number
  readonly backoffMaxMs: number
  readonly budget: number
  readonly nonIdempotent: boolean
  readonly maxBufferedBody: number
}

export interface UpstreamConfig {
  readonly name: string
  readonly endpoints: readonly string[]
  readonly protocol: 'http1' | 'h2'
  readonly balance: 'least-request' | 'round-robin'
  readonly connectTimeoutMs: number
  readonly idleTimeout: number | 'auto'
  /** null: no cap. */
  readonly maxConnectionsPerEndpoint: number | null
  /** Longest wait for a connection under maxConnectionsPerEndpoint: limits.queueTimeout or its default. */
  readonly connectionQueueTimeoutMs: number
  readonly tcpKeepAliveMs: number
  readonly outlier: { readonly consecutiveFailures: number, readonly ejectForMs: number, readonly maxEjectForMs: number }
  readonly healthCheck: {
    readonly path: string
    readonly intervalMs: number
    readonly timeoutMs: number
    readonly healthyThreshold: number
    readonly unhealthyThreshold: number
  } | null
  readonly limits: { readonly maxConcurrent: number, readonly maxQueued: number, readonly queueTimeoutMs: number } | null
  /** For dns:// endpoints: re-resolve interval and DNS server (null: the system's). */
  readonly dns: { readonly refreshMs: number, readonly resolver: string | null }
}

export interface ListenAddress {
  readonly address: string
  readonly host: string
  readonly port: number
}

/**
 * A client-facing listener. `http1`: HTTP/1.1; `tls`: HTTPS with HTTP/2 and HTTP/1.1 by ALPN;
 * `h2c`: cleartext HTTP/2 with prior knowledge.
 */
export interface ListenerConfig extends ListenAddress {
  readonly kind: 'http1' | 'tls' | 'h2c'
  /** Absolute paths of the PEM files (tls only). */
  readonly tls: { readonly cert: string, readonly key: string } | null
}

/** downstream.resetFlood: the gateway-wide bound on HTTP/2 streams reset by clients. */
export interface ResetFloodLimits {
  /** Client resets per second the whole gateway absorbs without cutting anyone. */
  readonly rate: number
  /** Client resets absorbed at once before the rate applies. */
  readonly burst: number
  /** Resets within one second that make a connection an abuser once the budget is spent. */
  readonly perConnection: number
}

export interface DownstreamConfig {
  readonly headersTimeoutMs: number
  readonly bodyIdleTimeoutMs: number
  readonly lingerTimeoutMs: number
  readonly idleTimeoutMs: number
  readonly sendTimeoutMs: number
  readonly maxHeaderSize: number
  readonly maxHeaderCount: number
  /** HTTP/2: open streams per session; past it a new stream is refused (REFUSED_STREAM). */
  readonly maxConcurrentStreams: number
  readonly maxBodySize: number
  readonly tcpKeepAliveMs: number
  readonly resetFlood: ResetFloodLimits
}

export interface TelemetryConfig {
  readonly otlp: {
    /** OTLP/HTTP base URL; spans go to ENDPOINT/v1/traces. */
    readonly endpoint: string
    readonly serviceName: string
    readonly headers: Readonly<Record<string, string>>
  } | null
}

export interface RuntimeConfig {
  readonly source: { readonly path: string, readonly hash: string, readonly loadedAt: string }
  readonly listen: readonly ListenerConfig[]
  readonly admin: ListenAddress
  readonly downstream: DownstreamConfig
  readonly upstreams: Readonly<Record<string, UpstreamConfig>>
  readonly routes: readonly RouteConfig[]
  readonly drain: { readonly delayMs: number, readonly timeoutMs: number }
  readonly log: { readonly level: string }
  /** Processes sharing the listeners; `auto`: one per CPU the process may use (os.availableParallelism(), cgroup limits included), counted at start. */
  readonly workers: number | 'auto'
  readonly telemetry: TelemetryConfig
}
