// Starting and stopping the gateway: the data plane (gateway/server.ts) and the control plane
// (admin/server.ts, which reads it) are wired together here, so neither owns the other.
import type http from 'node:http'
import type { RuntimeConfig } from '../config/runtime.ts'
import type { GatewayLog } from '../observe/log.ts'
import type { GatewayMetrics } from '../observe/metrics.ts'
import { createAdminServer, gatewayAdmin } from '../admin/server.ts'
import { GatewayServer } from '../gateway/server.ts'
import { listen } from '../gateway/listeners.ts'
import { Tracing } from '../observe/tracing.ts'
import { GenAiMetrics } from '../observe/genai-metrics.ts'
import pkg from '../../package.json' with { type: 'json' }

export class RunningGateway {
  readonly gateway: GatewayServer
  readonly #admin: http.Server
  adminAddress = ''

  constructor (config: RuntimeConfig, log: GatewayLog, metrics: GatewayMetrics) {
    this.gateway = new GatewayServer(config, log, metrics)
    this.#admin = createAdminServer(gatewayAdmin(this.gateway))
  }

  /** Binds the admin listener, then the client listeners; readiness turns 200 once all are bound. */
  async start (): Promise<void> {
    const { gateway } = this
    const config = gateway.config
    await gateway.ready()
    gateway.tracing = await Tracing.start(config.telemetry, pkg.version)
    gateway.metrics.genai = await GenAiMetrics.start(config.telemetry, pkg.version)
    this.adminAddress = await listen(this.#admin, config.admin)
    await gateway.listen()
    gateway.serving()
  }

  /** Closes everything at once (after a drain, a failed start, or on a second signal). */
  async close (): Promise<void> {
    await this.gateway.close()
    await new Promise<void>((resolve) => this.#admin.close(() => resolve()))
    this.#admin.closeAllConnections()
    // The spans still batched go out before the process exits.
    await this.gateway.tracing?.shutdown()
    await this.gateway.metrics.genai?.shutdown()
  }
}
