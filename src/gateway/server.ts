// The running gateway: listeners, admin listener and the current configuration generation.
import type http from 'node:http'
import type { RuntimeConfig } from '../config/runtime.ts'
import type { GatewayLog } from '../observe/log.ts'
import { createAdminServer, type GatewayState } from '../admin/server.ts'
import { Exchange } from './forward.ts'
import { Generation } from './generation.ts'
import { createListener, listen } from './listeners.ts'

export class GatewayServer {
  readonly log: GatewayLog
  #generation: Generation
  #state: GatewayState = 'starting'
  #servers: http.Server[] = []
  #admin: http.Server | null = null
  #inflight = 0
  #idleWaiters: Array<() => void> = []
  /** Bound addresses, as HOST:PORT, in config order. */
  addresses: string[] = []
  adminAddress = ''

  constructor (config: RuntimeConfig, log: GatewayLog) {
    this.log = log
    this.#generation = new Generation(config)
  }

  get config (): RuntimeConfig { return this.#generation.config }
  get state (): GatewayState { return this.#state }
  get inflight (): number { return this.#inflight }

  async start (): Promise<void> {
    const config = this.config
    this.#admin = createAdminServer({ state: () => this.#state, config: () => this.config })
    this.adminAddress = await listen(this.#admin, config.admin)
    for (const address of config.listen) {
      const server = createListener(config.downstream, this.log, (req, res) => this.#handle(req, res))
      this.#servers.push(server)
      this.addresses.push(await listen(server, address))
    }
    this.#state = 'serving'
    this.log.started(this.addresses, this.adminAddress, config.source.path, config.source.hash)
  }

  #handle (req: http.IncomingMessage, res: http.ServerResponse): void {
    this.#inflight++
    res.once('close', () => {
      if (--this.#inflight === 0) for (const wake of this.#idleWaiters.splice(0)) wake()
    })
    new Exchange(this.#generation, this.log, req, res).start()
  }

  /**
   * Stops accepting, closes idle keep-alive connections and waits for in-flight requests
   * (the full drain sequence of DESIGN.md §9 builds on this).
   */
  async stop (): Promise<void> {
    this.#state = 'draining'
    const closed = this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))
    for (const s of this.#servers) s.closeIdleConnections()
    if (this.#inflight > 0) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve))
    for (const s of this.#servers) s.closeAllConnections()
    await Promise.all(closed)
    await this.#generation.close()
    await new Promise<void>((resolve) => this.#admin === null ? resolve() : this.#admin.close(() => resolve()))
    this.#admin?.closeAllConnections()
  }
}
