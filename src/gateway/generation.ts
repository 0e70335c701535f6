// One configuration generation: the RuntimeConfig and what is built from it once (router,
// upstream services). A request keeps the generation it started with, through a reload.
import type { RuntimeConfig } from '../config/runtime.ts'
import { UpstreamService } from '../upstream/service.ts'
import { Router } from './router.ts'

export class Generation {
  readonly config: RuntimeConfig
  readonly router: Router
  readonly upstreams: ReadonlyMap<string, UpstreamService>

  constructor (config: RuntimeConfig) {
    this.config = config
    this.router = new Router(config.routes)
    this.upstreams = new Map(Object.values(config.upstreams).map((u) => [u.name, new UpstreamService(u)]))
  }

  async close (): Promise<void> {
    await Promise.all([...this.upstreams.values()].map((u) => u.close()))
  }
}
