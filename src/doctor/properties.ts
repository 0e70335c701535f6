// The normalised vocabulary of a hop's time limits (issue 7). Every preset fills some of these,
// `set:` overrides them, and the rules read nothing else. A property that is absent is unknown;
// `null` means unlimited (`none` in a chain file).

export const PROPERTIES = {
  requestTimeout: 'whole exchange, from the request to the last response byte',
  firstByteTimeout: 'until the response headers arrive',
  streamIdleTimeout: 'longest gap between response bytes',
  writeTimeout: 'a server\'s limit on writing its whole response (Go style)',
  serverIdleTimeout: 'keep-alive idle time it allows its clients',
  clientIdleTimeout: 'idle time it keeps pooled connections to the next hop',
  headersTimeout: 'the request head must arrive within this',
  uploadTimeout: 'the whole request, body included, must arrive within this (a slow upload is cut)',
  connectTimeout: 'TCP (and TLS) connect to the next hop',
  heartbeat: 'interval of keep-alive bytes it injects into streams going to its client',
  drainDelay: 'after SIGTERM, keeps serving this long while load balancers take it out of rotation',
  drainTimeout: 'then waits this long for in-flight requests'
} as const

export type Property = keyof typeof PROPERTIES

export const PROPERTY_NAMES = Object.keys(PROPERTIES) as Property[]

export function isProperty (name: string): name is Property {
  return Object.hasOwn(PROPERTIES, name)
}
