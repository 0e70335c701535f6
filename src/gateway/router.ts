// Routes are tried in order; the first match wins. Matchers are built once per config.
import type { RouteConfig } from '../config/runtime.ts'

type Matcher = (method: string, host: string | null, path: string) => boolean

function hostMatcher (pattern: string | null): ((host: string | null) => boolean) | null {
  if (pattern === null) return null
  if (pattern.startsWith('*.')) {
    const suffix = pattern.slice(1)
    return (host) => host !== null && host.endsWith(suffix) && host.length > suffix.length
  }
  return (host) => host === pattern
}

function compile (route: RouteConfig): Matcher {
  const { pathPrefix, methods } = route.match
  const host = hostMatcher(route.match.host)
  const methodSet = methods === null ? null : new Set(methods)
  return (method, requestHost, path) =>
    path.startsWith(pathPrefix) &&
    (methodSet === null || methodSet.has(method)) &&
    (host === null || host(requestHost))
}

/** The Host header without its port, lower-cased; null when absent. */
export function hostOf (header: string | undefined): string | null {
  if (header === undefined || header === '') return null
  const lower = header.toLowerCase()
  if (lower.startsWith('[')) return lower.slice(0, lower.indexOf(']') + 1)
  const colon = lower.indexOf(':')
  return colon === -1 ? lower : lower.slice(0, colon)
}

export class Router {
  readonly #routes: readonly RouteConfig[]
  readonly #matchers: readonly Matcher[]
  constructor (routes: readonly RouteConfig[]) {
    this.#routes = routes
    this.#matchers = routes.map(compile)
  }

  match (method: string, host: string | null, path: string): RouteConfig | undefined {
    for (let i = 0; i < this.#matchers.length; i++) {
      if (this.#matchers[i]!(method, host, path)) return this.#routes[i]
    }
    return undefined
  }
}
