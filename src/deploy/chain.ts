// Doctor chain files for what render wrote: for each route, its longest healthy request through
// the rendered load balancer (its values as rendered), the gateway (the real config) and the
// pod's grace period. `longhaul doctor doctor/ROUTE.yaml` finds nothing to fix in them. An Ingress
// (aws-alb, ingress-nginx) is read by the doctor from the rendered file itself, so a value changed
// there by hand is checked; the GKE policies are copied in as values.
import { Document } from 'yaml'
import type { RuntimeConfig } from '../config/runtime.ts'
import { formatDuration } from '../config/units.ts'
import { frontLimits, gracePeriodSeconds } from './front-limits.ts'
import type { FrontPolicy } from './load-balancers.ts'

export function chainFiles (config: RuntimeConfig, front: FrontPolicy['hop'] | undefined, options: { configPath: string }): Array<{ file: string, text: string }> {
  const grace = gracePeriodSeconds(frontLimits(config))
  return config.routes.map((route) => {
    const t = route.timeouts
    // The longest healthy request the route lets finish: a second under its request limit (a day
    // when unlimited), silent a second under streamIdle (a request that reaches a limit is cut).
    const duration = (t.request.ms ?? 86_400_000) - 1000
    const silence = t.streamIdle.ms === null ? duration : t.streamIdle.ms - 1000
    const hops: Array<Record<string, unknown>> = [{ name: 'client' }]
    if (front !== undefined) {
      hops.push('from' in front
        ? { name: 'load-balancer', from: `../${front.from}` }
        : { name: 'load-balancer', preset: front.preset, set: Object.fromEntries(Object.entries(front.set).map(([k, v]) => [k, formatDuration(v.ms)])) })
    }
    hops.push({ name: 'gateway', preset: 'longhaul', config: options.configPath, route: route.name }, { name: 'app' })
    const doc = new Document({
      workload: { name: `route ${route.name}, its longest request`, duration: formatDuration(duration), streaming: true, maxSilence: formatDuration(Math.min(silence, duration)) },
      hops,
      deploy: { hop: 'gateway', terminationGracePeriod: `${grace}s` }
    })
    doc.commentBefore = ` Rendered by \`longhaul render kubernetes\`: check it with \`longhaul doctor ${route.name}.yaml\`.` +
      (front === undefined
        ? ''
        : 'from' in front
          ? `\n The load balancer is read from ../${front.from}: a value changed there by hand is what the doctor checks.`
          : `\n The load balancer's values as rendered (${Object.values(front.set).map((v) => v.written).join(', ')}):\n the doctor cannot read that file alone yet; change a value there, change it here too.`)
    return { file: `${route.name}.yaml`, text: doc.toString({ lineWidth: 0 }) }
  })
}
