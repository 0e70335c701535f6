// The embedded demo: a config in front of the in-process demo upstream, loaded through the same
// loader as any file (so it is validated like one).
export interface DemoAddresses {
  listen: string
  admin: string
  upstreamUrl: string
}

// The chat completions and Messages routes: an LLM may think for a while, then streams.
const LLM_TIMEOUTS = `    timeouts:
      firstByte: 30s
      streamIdle: 3s
      request: 5m
      maxClientTimeout: 30m
`

export function demoConfigText ({ listen, admin, upstreamUrl }: DemoAddresses): string {
  return `# longhaul's embedded demo
listen:
  - address: ${listen}
admin:
  address: ${admin}
upstreams:
  demo:
    endpoints: [${upstreamUrl}]
    connectTimeout: 2s
routes:
  - name: chat
    match: { pathPrefix: /v1/chat, methods: [POST] }
    upstream: demo
${LLM_TIMEOUTS}  - name: messages
    match: { pathPrefix: /v1/messages, methods: [POST] }
    upstream: demo
${LLM_TIMEOUTS}  - name: demo
    match: { pathPrefix: / }
    upstream: demo
    timeouts: { request: 1m, streamIdle: 3s }
# Ctrl-C on a laptop: no load balancer to wait for (a second Ctrl-C ends at once).
drain: { delay: 0s, timeout: 5m }
`
}

export function demoBanner (gateway: string, admin: string): string {
  const base = `http://${gateway.replace(/^0\.0\.0\.0:/, 'localhost:').replace(/^\[::\]:/, 'localhost:')}`
  const chat = `curl -N ${base}/v1/chat/completions -H 'content-type: application/json' -d '{"stream":true}'`
  return `
longhaul is running its embedded demo: the gateway on ${gateway} in front of a slow upstream (OpenAI- and Anthropic-style).
Try:
  # a streaming chat answer, a token every 50 ms
  ${chat}
  # a stream that stalls after 5 tokens: cut by stream_idle_timeout (streamIdle 3s), with an SSE error record
  ${chat} -H 'x-demo-stall-after: 5'
  # an upstream that resets the connection mid-stream: upstream_reset
  ${chat} -H 'x-demo-reset-after: 5'
  # the same, Anthropic Messages style
  curl -N ${base}/v1/messages -H 'content-type: application/json' -d '{"stream":true}'
  # a client deadline of 1 s on a slow answer: client_deadline_exceeded
  curl -i ${base}/v1/chat/completions -d '{}' -H 'x-longhaul-timeout-ms: 1000'
  # the effective timeouts of every route, with where each came from
  curl http://${admin}/config
`
}
