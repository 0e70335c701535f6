// A worker process (workers > 1): one gateway on listener sockets of its own that share their
// ports with the other workers' (SO_REUSEPORT), with no admin listener of its own. It takes its
// config (resolved by the primary), reloads and drains from the primary, answers its /status and
// /metrics questions, and reports how many requests it has in flight once a second.
import { AggregatorRegistry } from 'prom-client'
import type { RuntimeConfig } from '../config/runtime.ts'
import { GatewayServer, type ReloadResult } from '../gateway/server.ts'
import { status, upstreamStates } from '../admin/server.ts'
import { liveSnapshot } from '../admin/live.ts'
import { Tracing } from '../observe/tracing.ts'
import { GenAiMetrics } from '../observe/genai-metrics.ts'
import pkg from '../../package.json' with { type: 'json' }
import { GatewayLog } from '../observe/log.ts'
import { GatewayMetrics } from '../observe/metrics.ts'
import { drain } from './drain.ts'
import { isToWorker, type FromWorker, type ToWorker } from './worker-messages.ts'

/** How often a worker tells the primary its in-flight count (the requests lost if it dies). */
const INFLIGHT_REPORT_MS = 1000

function send (message: FromWorker): void {
  process.send?.(message)
}

export async function runWorker (): Promise<void> {
  // Signals go to the primary, which tells every worker what to do (a terminal's Ctrl-C reaches
  // the whole process group: a worker acting on it alone would race the primary's drain).
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {})
  // A primary gone before this worker serves leaves nothing to drain: end now.
  const orphaned = (): never => process.exit(1)
  process.once('disconnect', orphaned)
  // Everything the primary sends is held until the worker serves (a drain, a question for
  // /status): messages read together are emitted together, before an awaiting caller resumes, so
  // only a listener that is there from the start sees them all.
  const early: unknown[] = []
  let first: ((message: ToWorker) => void) | null = null
  const hold = (message: unknown): void => {
    if (first !== null) { first(message as ToWorker); first = null } else early.push(message)
  }
  process.on('message', hold)
  const start = await new Promise<ToWorker>((resolve) => { first = resolve })
  if (start.longhaul !== 'start') throw new Error(`worker: expected the start message, got ${start.longhaul}`)
  const { config } = start
  const log = new GatewayLog(config.log.level, undefined, { sharedStdout: true })
  const metrics = new GatewayMetrics()
  // The primary's /metrics asks for these; constructing an AggregatorRegistry is what installs
  // prom-client's answering listener in a worker (setRegistries alone does not).
  AggregatorRegistry.setRegistries([metrics.registry])
  void new AggregatorRegistry()
  const gateway = new GatewayServer(config, log, metrics)
  try {
    gateway.tracing = await Tracing.start(config.telemetry, pkg.version)
    metrics.genai = await GenAiMetrics.start(config.telemetry, pkg.version)
    await gateway.ready()
    await gateway.listen({ reusePort: true, ports: start.ports ?? undefined })
  } catch (err) {
    log.error('start failed', err)
    await gateway.close()
    await log.flush()
    process.exit(1)
  }
  gateway.serving()
  send({ longhaul: 'serving', addresses: gateway.addresses })

  let reported = 0
  setInterval(() => {
    if (gateway.inflight === reported) return
    reported = gateway.inflight
    send({ longhaul: 'inflight', inflight: reported })
  }, INFLIGHT_REPORT_MS).unref()

  let draining = false
  const drainAndExit = (signal: string): void => {
    if (draining) return
    draining = true
    send({ longhaul: 'draining' })
    void drain(gateway, signal).then(async (cut) => {
      await gateway.close()
      await gateway.tracing?.shutdown()
      await metrics.genai?.shutdown()
      const code = cut === 0 ? 0 : 1
      log.exited(code)
      await log.flush()
      process.exit(code)
    })
  }

  // The primary validated this config already; a failure here is reported as the primary's would be.
  const reload = async (config: RuntimeConfig): Promise<ReloadResult> => {
    try {
      return await gateway.reload(config)
    } catch (err) {
      return gateway.reloadFailed([(err as Error).message])
    }
  }

  const onMessage = (message: unknown): void => {
    if (!isToWorker(message)) return
    switch (message.longhaul) {
      case 'status':
        send({ longhaul: 'status', id: message.id, status: status(gateway) })
        return
      case 'live':
        send({ longhaul: 'live', id: message.id, live: liveSnapshot(gateway, upstreamStates(gateway)), headroom: gateway.headroom.export() })
        return
      case 'reload':
        void reload(message.config).then((result) => send({ longhaul: 'reloaded', id: message.id, result }))
        return
      case 'drain':
        drainAndExit(message.signal)
        return
      case 'start':
        return
    }
  }
  process.off('message', hold)
  process.on('message', onMessage)
  for (const message of early.splice(0)) onMessage(message)
  // The primary is gone (killed): nobody will say when to stop, so drain now.
  process.off('disconnect', orphaned)
  process.on('disconnect', () => drainAndExit('primary exited'))
}
