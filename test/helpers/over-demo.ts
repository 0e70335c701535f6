// The most common setup of a test file: the demo upstream, and a real gateway in front of it with
// its listener and admin endpoint on ephemeral loopback ports.
import { startGateway, type RunningGateway } from './gateway.ts'
import { startDemoUpstream, type DemoUpstream } from './upstreams.ts'

export interface OverDemo {
  demo: DemoUpstream
  gw: RunningGateway
}

/**
 * Starts the demo upstream, then a gateway whose config is the common head (listen, admin, the
 * upstream `demo`) followed by `rest(demoUrl)`: routes, and other upstreams when they need the URL.
 * `demoKeys` adds keys to the `demo` upstream's entry (`limits: { maxConcurrent: 1 }`);
 * `nodeArgs` go to the gateway's Node (an `--import` that injects a fault).
 */
export async function startOverDemo (rest: (demoUrl: string) => string, options: { demoKeys?: string, nodeArgs?: string[] } = {}): Promise<OverDemo> {
  const demo = await startDemoUpstream()
  const demoKeys = options.demoKeys === undefined ? '' : `, ${options.demoKeys}`
  const gw = await startGateway(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams:
  demo: { endpoints: [${demo.url}]${demoKeys} }
${rest(demo.url)}`, { nodeArgs: options.nodeArgs })
  return { demo, gw }
}

/** Stops the gateway, then the demo upstream; either may be missing when the start failed. */
export async function stopOverDemo (running: Partial<OverDemo>): Promise<void> {
  await running.gw?.stop()
  await running.demo?.close()
}
