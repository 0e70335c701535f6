// Gateways built for LLM traffic (issue 18 item 5). Their users' most frequent complaint is a
// default that cuts long generations, or one timer that means the wait for the first token and the
// gaps between tokens at once. Sources: reference/user-pains.md, reference/anchors-features.md,
// and each project's docs; a value read in one place only is UNCONFIRMED.
import { sec } from '../format.ts'
import { proxy, v, type Preset } from './types.ts'

const PAINS = 'reference/user-pains.md'
const LITELLM_MESSAGES = 'https://github.com/BerriAI/litellm/issues/30836 ("/v1/messages ignores timeout/stream_timeout, hard-capped at 600s")'
const LITELLM_TIMEOUT = 'https://docs.litellm.ai/docs/proxy/timeout ; litellm/__init__.py request_timeout: float = 6000 (reference/anchors-features.md [L2])'
const KONG = 'Kong Admin API, Service entity: read_timeout / write_timeout / connect_timeout, each 60000 ms by default (https://developer.konghq.com/gateway/entities/service/; not re-read)'
const HIGRESS = 'https://higress.io/docs/latest/user/configmap/ (higress-config: downstream.idleTimeout, 180 s; not re-read) ; issue 18 of this project: "one gateway-wide 180 s idle" for the first token and the gaps'
const PORTKEY = 'https://github.com/Portkey-AI/gateway/issues/267 ("Misleading HTTP 200 Status Code on Network Connection Lost Error via Portkey")'
const ENVOY_AI = `${PAINS} ("Envoy AI Gateway 60 s"; \`read SSE stream: unexpected EOF\` … "Gateway route timeout (60 s Envoy AI Gateway) cut the stream")`

const ENVOY_SI = '408 before the response headers, a reset stream after (flag SI): `read SSE stream: unexpected EOF`, `stream disconnected before completion`'

export const AI_GATEWAYS: readonly Preset[] = [
  proxy('envoy-ai-gateway', 'Envoy AI Gateway (AIGatewayRoute on Envoy Gateway)', {
    values: {
      requestTimeout: v(sec(60), 'AIGatewayRoute rules[].timeouts.request', ENVOY_AI, { confirmed: false, how: 'AIGatewayRoute spec.rules[].timeouts.request (or the generated HTTPRoute\'s); a stream needs a longer one', symptom: '504 `upstream request timeout` before the first token; a stream still running is reset: `read SSE stream: unexpected EOF`', note: 'covers the whole response, the stream included' }),
      streamIdleTimeout: v(sec(300), 'streamIdleTimeout (ClientTrafficPolicy; Envoy HCM stream_idle_timeout)', 'https://www.envoyproxy.io/docs/envoy/latest/faq/configuration/timeouts ; issue 18 (one timer for the first token and the gaps)', { symptom: ENVOY_SI, note: 'one timer for the wait for the first token and for the gaps between tokens: a thinking model and a stuck one look alike' })
    },
    notes: ['A reasoning model that thinks for minutes before its first token needs streamIdleTimeout above that wait, which then lets a stuck stream hang as long.']
  }),
  proxy('higress', 'Higress AI gateway', {
    values: {
      streamIdleTimeout: v(sec(180), 'downstream.idleTimeout (higress-config)', HIGRESS, { confirmed: false, symptom: 'a stream silent that long is closed: the answer stops mid-way', note: 'gateway-wide: it bounds every stream\'s silence, the wait for the first token included' }),
      serverIdleTimeout: v(sec(180), 'downstream.idleTimeout (connection idle)', HIGRESS, { confirmed: false })
    },
    follows: { serverIdleTimeout: 'streamIdleTimeout' }
  }),
  proxy('litellm', 'LiteLLM proxy', {
    values: {
      requestTimeout: v(sec(6000), 'request_timeout (litellm_settings)', LITELLM_TIMEOUT, { confirmed: false, symptom: '`litellm.Timeout: APITimeoutError - Request timed out.`' })
    },
    defaultMode: 'chat-completions',
    modes: {
      'chat-completions': { description: 'the OpenAI-style /v1/chat/completions route: request_timeout applies' },
      messages: {
        description: 'the Anthropic-style /v1/messages route: capped at 600 s whatever timeout or stream_timeout says',
        values: {
          requestTimeout: v(sec(600), '/v1/messages transport cap', LITELLM_MESSAGES, { confirmed: false, fixed: true, symptom: '`httpx.ReadTimeout` / `litellm.Timeout` at 600 s: long generations are cut' })
        }
      }
    },
    other: [
      { setting: 'stream_timeout', ms: null, meaning: 'a gap between chunks of a stream (ttft_timeout: the wait for the first chunk)', source: 'reference/anchors-features.md [L4]', confirmed: false }
    ]
  }),
  proxy('kong', 'Kong Gateway (and Kong AI Gateway): a Service\'s timeouts', {
    values: {
      streamIdleTimeout: v(sec(60), 'read_timeout', KONG, { confirmed: false, symptom: '504 `The upstream server is timing out` before the headers; mid-stream the response is cut', note: 'between two reads, the wait for the response headers included (milliseconds in Kong\'s config)' }),
      connectTimeout: v(sec(60), 'connect_timeout', KONG, { confirmed: false })
    },
    other: [
      { setting: 'write_timeout', ms: sec(60), meaning: 'between two writes to the upstream', source: KONG, confirmed: false }
    ]
  }),
  proxy('portkey', 'Portkey AI gateway', {
    values: {
      requestTimeout: v(null, 'request_timeout (config) / x-portkey-request-timeout', 'https://portkey.ai/docs/product/ai-gateway/request-timeouts', { symptom: 'when set: 408' })
    },
    relaysCutAs: 'a clean end of the stream, or HTTP 200 with `{"html-message": "Network connection lost."}`',
    notes: [`A stream that breaks behind it reaches the client as a success (${PORTKEY}): the worst symptom, a truncated answer that looks complete, and no retry.`]
  })
]
