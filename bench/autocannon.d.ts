// autocannon ships no types: the part of its programmatic API the bench uses (autocannon 8,
// lib/init.js, lib/run.js, lib/aggregateResult.js).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  namespace autocannon {
    interface Options {
      url: string
      connections?: number
      /** Seconds. */
      duration?: number
      pipelining?: number
      /** Seconds before a request counts as a timeout. */
      timeout?: number
      method?: string
      headers?: Record<string, string>
    }

    /** Percentiles of an HdrHistogram; latency values are whole milliseconds. */
    interface Histogram {
      average: number
      mean: number
      stddev: number
      min: number
      max: number
      total: number
      p50: number
      p90: number
      p99: number
      p99_9: number
    }

    interface Result {
      duration: number
      errors: number
      timeouts: number
      non2xx: number
      resets: number
      '2xx': number
      latency: Histogram
      requests: Histogram & { sent: number }
      throughput: Histogram
    }

    interface Client extends EventEmitter {}

    interface Instance extends EventEmitter, PromiseLike<Result> {
      on (event: 'response', listener: (client: Client, statusCode: number, resBytes: number, responseTimeMs: number) => void): this
      on (event: string, listener: (...args: unknown[]) => void): this
    }
  }

  function autocannon (options: autocannon.Options): autocannon.Instance
  export = autocannon
}
