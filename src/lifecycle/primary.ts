// `serve` with `workers` above 1, in the primary process: the worker pool, the admin listener that
// answers for all of it, and the signals (drain, reload) that the primary passes on to every worker.
import type { LoadedConfig } from '../config/load.ts'
import type { GatewayLog } from '../observe/log.ts'
import { createAdminServer } from '../admin/server.ts'
import { listen } from '../gateway/listeners.ts'
import { reloadFrom, watchConfig } from './reload.ts'
import { WorkerPool } from './workers.ts'

export async function servePrimary (loaded: LoadedConfig, count: number, log: GatewayLog, options: { file: string, watch: boolean }): Promise<void> {
  const pool = new WorkerPool(loaded.config, count, log)
  const admin = createAdminServer({
    get state () { return pool.state },
    get config () { return pool.config },
    ready: () => pool.ready,
    status: () => pool.status(),
    metrics: async () => ({ contentType: pool.contentType, text: await pool.metricsText() }),
    live: () => pool.live(),
    headroom: () => pool.headroom()
  })
  let adminAddress: string
  try {
    adminAddress = await listen(admin, pool.config.admin)
    await pool.start()
  } catch (err) {
    log.error('start failed', err)
    pool.kill()
    admin.close()
    log.exited(1)
    await log.flush()
    process.exit(1)
  }

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) {
      pool.kill()
      log.exited(1)
      process.exit(1)
    }
    stopping = true
    void pool.drain(signal).then(async (code) => {
      admin.close()
      admin.closeAllConnections()
      log.exited(code)
      await log.flush()
      process.exit(code)
    })
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGHUP', () => { void reloadFrom(pool, options.file) })
  if (options.watch) watchConfig(pool, options.file)
  // Only once the handlers are there (see serve in cli.ts).
  const { config } = pool
  log.started(pool.addresses, adminAddress, config.source.path, config.source.hash, pool.pids)
}
