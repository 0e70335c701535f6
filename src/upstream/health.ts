// Active health checks: GET a path on every endpoint each interval; thresholds of passes and
// failures in a row move an endpoint in and out of rotation.
import type { Dispatcher } from 'undici'
import type { UpstreamConfig } from '../config/runtime.ts'
import type { Endpoint } from './endpoint.ts'

type Check = NonNullable<UpstreamConfig['healthCheck']>

interface Streak { passes: number, failures: number }

export class HealthChecker {
  /** Read at every round: dns:// endpoints come and go. */
  readonly #service: { readonly endpoints: readonly Endpoint[] }
  readonly #check: Check
  readonly #changed: (e: Endpoint, healthy: boolean, reason: string) => void
  readonly #streaks = new Map<Endpoint, Streak>()
  #timer: NodeJS.Timeout | undefined

  constructor (service: { endpoints: readonly Endpoint[] }, check: Check, changed: (e: Endpoint, healthy: boolean, reason: string) => void) {
    this.#service = service
    this.#check = check
    this.#changed = changed
  }

  start (): void {
    this.#timer = setInterval(() => { for (const e of this.#service.endpoints) void this.#probe(e) }, this.#check.intervalMs)
    // Health checks never keep a stopping process alive.
    this.#timer.unref()
  }

  stop (): void {
    clearInterval(this.#timer)
  }

  async #probe (e: Endpoint): Promise<void> {
    let ok: boolean
    let reason: string
    try {
      // The requests' TLS name: with another one, undici would close the pool's connection to open its own.
      const options: Dispatcher.RequestOptions & { servername: string } = { path: this.#check.path, method: 'GET', servername: e.servername, signal: AbortSignal.timeout(this.#check.timeoutMs), headers: { 'user-agent': 'longhaul-health-check' } }
      const res = await e.pool.request(options)
      await res.body.dump()
      ok = res.statusCode >= 200 && res.statusCode < 400
      reason = `health check ${this.#check.path} answered ${res.statusCode}`
    } catch (err) {
      ok = false
      // A timed-out check rejects with a DOMException, whose `code` is a legacy number (23): its name says more.
      const code = (err as { code?: unknown }).code
      reason = `health check ${this.#check.path} failed: ${typeof code === 'string' ? code : (err as Error).name}`
    }
    const streak = this.#streaks.get(e) ?? { passes: 0, failures: 0 }
    this.#streaks.set(e, streak)
    if (ok) {
      streak.passes++
      streak.failures = 0
      if (!e.healthy && streak.passes >= this.#check.healthyThreshold) {
        e.healthy = true
        this.#changed(e, true, reason)
      }
    } else {
      streak.failures++
      streak.passes = 0
      if (e.healthy && streak.failures >= this.#check.unhealthyThreshold) {
        e.healthy = false
        this.#changed(e, false, reason)
      }
    }
  }
}
