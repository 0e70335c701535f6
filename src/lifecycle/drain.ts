// Graceful shutdown (DESIGN.md §9, SCENARIOS.md story 5): readiness turns 503 at once, serving
// goes on for drain.delay while load balancers take the gateway out of rotation, then new
// connections are refused and in-flight requests get drain.timeout to finish.
import type { GatewayServer } from '../gateway/server.ts'

/** How often the drain logs how many requests are left and the oldest one's age. */
const PROGRESS_INTERVAL_MS = 5000

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Runs the drain; resolves with the number of requests that had to be cut as drain_timeout. */
export async function drain (server: GatewayServer, signal: string): Promise<number> {
  const started = performance.now()
  const { delayMs, timeoutMs } = server.config.drain
  server.beginDrain()
  server.log.drainStarted(signal, server.inflight, delayMs, timeoutMs)
  await sleep(delayMs)

  server.stopAccepting()
  server.log.drainStoppedAccepting(server.inflight, server.oldestInflightMs())
  const deadline = performance.now() + timeoutMs
  let idle = server.inflight === 0
  while (!idle) {
    const left = deadline - performance.now()
    if (left <= 0) break
    idle = await server.waitIdle(Math.min(left, PROGRESS_INTERVAL_MS))
    if (!idle && deadline - performance.now() > 0) server.log.drainProgress(server.inflight, server.oldestInflightMs(), Math.round(deadline - performance.now()))
  }
  const cut = idle ? 0 : await server.cutAll({ outcome: 'drain_timeout', limitMs: timeoutMs })
  server.log.drainFinished(cut, Math.round(performance.now() - started))
  return cut
}
