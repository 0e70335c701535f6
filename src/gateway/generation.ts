// One configuration generation: the RuntimeConfig and what is built from it once (router,
// upstream services). A request keeps the generation it started with, through a reload.
import { isDeepStrictEqual } from 'node:util'
import type { RuntimeConfig } from '../config/runtime.ts'
import { UpstreamService, type UpstreamObserver } from '../upstream/service.ts'
import { Router } from './router.ts'

export class Generation {
  readonly config: RuntimeConfig
  readonly router: Router
  readonly upstreams: ReadonlyMap<string, UpstreamService>

  /**
   * With `previous`, an upstream whose config did not change keeps its service, pools and open
   * connections (no reconnect storm on reload, and endpoint state survives).
   */
  constructor (config: RuntimeConfig, observer: UpstreamObserver, previous?: Generation) {
    this.config = config
    this.router = new Router(config.routes)
    this.upstreams = new Map(Object.values(config.upstreams).map((u) => {
      const kept = previous?.upstreams.get(u.name)
      return [u.name, kept !== undefined && isDeepStrictEqual(kept.config, u) ? kept : new UpstreamService(u, observer)]
    }))
  }

  /** Every upstream has its endpoints (dns:// ones resolved once, or failed). */
  async ready (): Promise<void> {
    await Promise.all([...this.upstreams.values()].map((u) => u.ready()))
  }

  /** Services of this generation that `next` does not keep; close them once their requests end. */
  retiredBy (next: Generation): UpstreamService[] {
    const kept = new Set(next.upstreams.values())
    return [...this.upstreams.values()].filter((s) => !kept.has(s))
  }

  async close (): Promise<void> {
    await Promise.all([...this.upstreams.values()].map((u) => u.close()))
  }
}
