// Doctor chain files for what render wrote: for each route, its longest healthy request from a
// client through the rendered manifests themselves (`from: ..`: the load balancer's policy, the
// Deployment's grace period, longhaul's config in the ConfigMap) to the app. `longhaul doctor
// doctor/ROUTE.yaml` finds nothing to fix in them, and a value changed by hand in any of those
// files is what it checks.
import { Document } from 'yaml'
import type { RouteConfig, RuntimeConfig } from '../config/runtime.ts'
import { formatDuration } from '../config/units.ts'

/** The request path the doctor follows to a route: its prefix, when no earlier route takes that path first. */
function pathTo (route: RouteConfig, routes: readonly RouteConfig[]): string | null {
  const path = route.match.pathPrefix
  const first = routes.find((r) => path.startsWith(r.match.pathPrefix))
  return first === route ? path : null
}

export interface ChainFiles {
  readonly files: Array<{ file: string, text: string }>
  /** Routes the doctor cannot reach by path alone (an earlier route takes their prefix first). */
  readonly skipped: string[]
}

export function chainFiles (config: RuntimeConfig): ChainFiles {
  const files: Array<{ file: string, text: string }> = []
  const skipped: string[] = []
  for (const route of config.routes) {
    const path = pathTo(route, config.routes)
    if (path === null) { skipped.push(route.name); continue }
    const t = route.timeouts
    // The longest healthy request the route lets finish: a second under its request limit (a day
    // when unlimited), silent a second under streamIdle (a request that reaches a limit is cut).
    const duration = (t.request.ms ?? 86_400_000) - 1000
    const silence = t.streamIdle.ms === null ? duration : t.streamIdle.ms - 1000
    const doc = new Document({
      workload: { name: `route ${route.name}, its longest request`, duration: formatDuration(duration), streaming: true, maxSilence: formatDuration(Math.min(silence, duration)) },
      hops: [{ name: 'client' }, { from: '..', path }, { name: 'app' }]
    })
    doc.commentBefore = ` Rendered by \`longhaul render kubernetes\`: \`longhaul doctor ${route.name}.yaml\` checks the manifests\n in .. as they are now (load balancer, grace period, the config in the ConfigMap).`
    files.push({ file: `${route.name}.yaml`, text: doc.toString({ lineWidth: 0 }) })
  }
  return { files, skipped }
}
