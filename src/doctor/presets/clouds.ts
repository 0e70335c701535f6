// Cloud load balancers, CDNs, managed gateways and serverless platforms. Values and sources:
// reference/timeout-defaults.md §4 and §5.
import { sec } from '../format.ts'
import { cloud, v, type Preset } from './types.ts'

const GCP_BES = 'https://cloud.google.com/load-balancing/docs/https#timeout-bes ; https://cloud.google.com/compute/docs/reference/rest/v1/backendServices (timeoutSec: "The default is 30 seconds") ; GKE: https://github.com/GoogleCloudPlatform/gke-gateway-api/blob/fc40d606a5332f11a8883f85caff66b63c4e88ef/apis/networking/v1/gcpbackendpolicy_types.go ; https://github.com/kubernetes/ingress-gce/blob/acbcf5d66dd9d31297a2a52a2d7d83d4c1a94539/pkg/backends/features/timeout.go'
const GCP_PROXY = 'https://cloud.google.com/compute/docs/reference/rest/v1/targetHttpProxies (httpKeepAliveTimeoutSec: default 610, 5-1200)'
const GCP_DISTRIBUTION = 'https://cloud.google.com/load-balancing/docs/https/request-distribution'
const ALB = 'https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html'
const NLB = 'https://docs.aws.amazon.com/elasticloadbalancing/latest/network/update-idle-timeout.html'
const APIGW = 'https://aws.amazon.com/about-aws/whats-new/2024/06/amazon-api-gateway-integration-timeout-limit-29-seconds/ ; https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html'
const CLOUDFLARE = 'https://developers.cloudflare.com/fundamentals/reference/connection-limits/ (last updated 2026-07-23)'
const EAS = 'https://www.alibabacloud.com/help/en/pai/user-guide/dedicated-gateway-timeout-best-practices'
const KNATIVE = 'https://github.com/knative/serving/blob/98e5ef90aa7033797aa0a61ef97f3ff7e49a3944'
const KNATIVE_DEFAULTS = `${KNATIVE}/config/core/configmaps/defaults.yaml ; pkg/apis/config/defaults.go`

const HEROKU = 'https://devcenter.heroku.com/articles/request-timeout (last updated 2024-05-07)'
const VERCEL = 'https://vercel.com/docs/functions/configuring-functions/duration ; https://vercel.com/docs/functions/limitations#max-duration ("Default 300s" with fluid compute)'
const NETLIFY = 'https://docs.netlify.com/build/functions/configuration (Default values: "Synchronous execution limit | 60 seconds | No")'
const AZURE_LB = 'https://learn.microsoft.com/azure/load-balancer/load-balancer-tcp-idle-timeout ; https://learn.microsoft.com/azure/load-balancer/load-balancer-tcp-reset'

const STREAM_CUT = 'a stream still running at that moment is cut'

interface FlowIdle { readonly ms: number, readonly setting: string, readonly source: string, readonly note: string }

/**
 * A layer-4 load balancer: it forwards connections and has one flow idle timer, which cuts a silent
 * stream and an idle kept-alive connection alike.
 */
function layer4 (name: string, component: string, flowIdle: FlowIdle, symptoms: { streamCut: string, idleReuse: string }): Preset {
  const { ms, setting, source, note } = flowIdle
  return cloud(name, component, {
    passThrough: true,
    values: {
      streamIdleTimeout: v(ms, setting, source, { symptom: symptoms.streamCut, note }),
      serverIdleTimeout: v(ms, `${setting} (flow idle)`, source, { symptom: symptoms.idleReuse })
    },
    follows: { serverIdleTimeout: 'streamIdleTimeout' }
  })
}

export const CLOUDS: readonly Preset[] = [
  cloud('heroku-router', 'Heroku HTTP router (Common Runtime)', {
    streamIdleAfterHeaders: true,
    values: {
      firstByteTimeout: v(sec(30), 'router request timeout (H12)', HEROKU, { fixed: true, symptom: '503 with `at=error code=H12 desc="Request timeout"` in the router log; the dyno goes on working', note: 'counted from the moment the whole request reached the dyno: an upload does not use it up' }),
      streamIdleTimeout: v(sec(55), 'router rolling window after the first byte (H15/H28 family)', HEROKU, { fixed: true, confirmed: false, symptom: `${STREAM_CUT}; the router logs an idle-connection error`, note: 'each byte sent starts a new 55 s window' })
    },
    notes: ['Neither value can be changed: a long answer must send its first byte within 30 s and a byte at least every 55 s (SSE heartbeats).']
  }),
  cloud('vercel-functions', 'Vercel Functions (fluid compute)', {
    values: {
      requestTimeout: v(sec(300), 'maxDuration', VERCEL, { symptom: '504 `FUNCTION_INVOCATION_TIMEOUT`; a stream still running is cut', note: 'the whole invocation, time spent streaming included', cap: { ms: sec(800), raisable: true, how: 'on Pro and Enterprise plans (Hobby: at most 300 s); the 800 s figure was not re-read' } })
    }
  }),
  cloud('netlify-functions', 'Netlify Functions (synchronous, streamed or buffered)', {
    values: {
      requestTimeout: v(sec(60), 'synchronous execution limit', NETLIFY, { fixed: true, symptom: 'the function is stopped: an error response, or a streamed answer cut short', note: 'background functions get 15 minutes but answer 202 at once' })
    },
    other: [
      { setting: 'edge functions response header timeout', ms: sec(40), meaning: 'an edge function must send its response headers within this', source: 'https://docs.netlify.com/edge-functions/limits/', confirmed: true }
    ]
  }),
  layer4('azure-load-balancer', 'Azure Load Balancer (layer 4, Standard)', { ms: sec(240), setting: 'load-balancing rule idleTimeoutInMinutes', source: AZURE_LB, note: '4–100 minutes' }, {
    streamCut: 'the flow is dropped without a word (a RST only with enableTcpReset): the stream hangs, then breaks',
    idleReuse: 'the next request on a connection idle that long is lost (a RST only with enableTcpReset)'
  }),
  cloud('gcp-external-alb', 'Google Cloud external Application Load Balancer (GFE); also GKE Ingress and GKE Gateway backends', {
    values: {
      requestTimeout: v(sec(30), 'backend service timeoutSec', GCP_BES, { how: 'GKE Gateway: GCPBackendPolicy spec.default.timeoutSec; GKE Ingress: BackendConfig spec.timeoutSec', symptom: `502 (\`statusDetails: backend_timeout\`) when nothing was sent yet; ${STREAM_CUT}`, note: 'the time for the complete response, not an idle timeout; also a WebSocket\'s lifetime. The 502 label was not re-read' }),
      serverIdleTimeout: v(sec(610), 'target proxy httpKeepAliveTimeoutSec', GCP_PROXY, { note: '5–1200 s' }),
      clientIdleTimeout: v(sec(600), 'backend keep-alive (fixed)', GCP_DISTRIBUTION, { fixed: true, symptom: '502 when the backend closed the kept-alive connection first' })
    },
    other: [
      { setting: 'connectionDraining.drainingTimeoutSec', ms: 0, meaning: 'draining of a removed backend: 0 cuts its connections at once', source: 'https://github.com/GoogleCloudPlatform/gke-gateway-api/blob/fc40d606a5332f11a8883f85caff66b63c4e88ef/apis/networking/v1/gcpbackendpolicy_types.go', confirmed: true }
    ],
    pitfalls: {
      httpRouteTimeout: {
        meant: 'requestTimeout',
        what: 'GKE\'s Gateway controller does not implement HTTPRoute `rules[].timeouts`: `kubectl apply` succeeds, only the route\'s status says so (`reason: UnsupportedValue`), and the backend service keeps its timeoutSec',
        works: 'GCPBackendPolicy spec.default.timeoutSec (GKE Gateway) or BackendConfig spec.timeoutSec (GKE Ingress): write it here as set: { requestTimeout: … }',
        source: 'SCENARIOS.md story 1 ; https://github.com/kserve/kserve/issues/5311 (2026-03: "GKE\'s Gateway controller does not implement the spec.rules.timeouts field") ; https://cloud.google.com/kubernetes-engine/docs/how-to/gatewayclass-capabilities',
        confirmed: true
      }
    }
  }),
  cloud('aws-alb', 'AWS Application Load Balancer', {
    values: {
      streamIdleTimeout: v(sec(60), 'idle_timeout.timeout_seconds', ALB, { symptom: `504 when the target sends nothing for 60 s; ${STREAM_CUT}`, note: '1–4000 s; one timer for the client side and the target side' }),
      serverIdleTimeout: v(sec(60), 'idle_timeout.timeout_seconds (client side)', ALB),
      clientIdleTimeout: v(sec(60), 'idle_timeout.timeout_seconds (target side)', ALB, { symptom: '502 Bad Gateway with `target_status_code="-"` in the access log, when the target closed the kept-alive connection first' })
    },
    follows: { serverIdleTimeout: 'streamIdleTimeout', clientIdleTimeout: 'streamIdleTimeout' },
    other: [
      { setting: 'client_keep_alive.seconds', ms: sec(3600), meaning: 'max lifetime of a client connection (not an idle timeout)', source: `${ALB}#http-client-keep-alive-duration`, confirmed: true }
    ],
    pitfalls: {
      clientKeepAlive: {
        meant: 'serverIdleTimeout',
        what: 'client_keep_alive.seconds is a connection lifetime (3600 s by default), not an idle timeout: it does not move the 60 s idle timer',
        works: 'idle_timeout.timeout_seconds: write set: { streamIdleTimeout: … } (it moves both sides\' idle timers too)',
        source: `${ALB}#http-client-keep-alive-duration`,
        confirmed: true
      }
    }
  }),
  layer4('aws-nlb', 'AWS Network Load Balancer (TCP listener)', { ms: sec(350), setting: 'listener tcp.idle_timeout.seconds', source: NLB, note: '60–6000 s; TLS listeners stay at 350 s' }, {
    streamCut: 'the flow is dropped without a word; the next packet on it gets a RST',
    idleReuse: 'the next request on a connection idle that long gets a RST'
  }),
  cloud('aws-api-gateway', 'Amazon API Gateway (REST API integration)', {
    values: {
      requestTimeout: v(sec(29), 'integration timeoutInMillis', APIGW, { symptom: '504 `Endpoint request timed out`', cap: { ms: sec(29), raisable: true, how: 'above 29 s only for Regional and private REST APIs, after an account quota increase (since 2024-06)' } })
    },
    notes: ['HTTP APIs: 30 s at most (unconfirmed).']
  }),
  cloud('cloudflare', 'Cloudflare (proxied zone)', {
    values: {
      streamIdleTimeout: v(sec(120), 'Proxy Read Timeout (proxy_read_timeout)', CLOUDFLARE, { symptom: '`HTTP 524 A Timeout Occurred`', note: 'a gap between two reads from the origin (older docs and folklore: 100 s); bytes that keep flowing avoid it', onlyIf: 'the zone is on an Enterprise plan (others cannot change proxy_read_timeout)' }),
      serverIdleTimeout: v(sec(400), 'client keep-alive (HTTP/1.1) / HTTP/2 idle', CLOUDFLARE, { fixed: true }),
      clientIdleTimeout: v(sec(900), 'Proxy Idle Timeout (origin keep-alive)', CLOUDFLARE, { symptom: '520 when the origin closes a reused connection badly' }),
      connectTimeout: v(sec(19), 'complete TCP connection to the origin', CLOUDFLARE, { symptom: '522' })
    },
    other: [
      { setting: 'Proxy Write Timeout', ms: sec(30), meaning: 'writing to the origin (524)', source: CLOUDFLARE, confirmed: true },
      { setting: 'TCP ACK timeout', ms: sec(90), meaning: 'origin acknowledging data', source: CLOUDFLARE, confirmed: true }
    ]
  }),
  cloud('azure-app-gateway', 'Azure Application Gateway', {
    values: {
      requestTimeout: v(sec(30), 'backendHttpSettings requestTimeout', 'https://github.com/Azure/azure-powershell/issues/5145 ; https://learn.microsoft.com/en-us/azure/application-gateway/configuration-http-settings', { symptom: '502 (v1) / 504', note: 'when omitted through the API or PowerShell; the portal\'s "20 s" default is unconfirmed' })
    }
  }),
  cloud('azure-front-door', 'Azure Front Door (Standard/Premium)', {
    values: {
      requestTimeout: v(sec(30), 'originResponseTimeoutSeconds', 'https://learn.microsoft.com/en-us/azure/frontdoor/troubleshoot-issues', { symptom: '504 `ErrorInfo: OriginTimeout`', cap: { ms: sec(240), raisable: false, how: '16–240 s' } })
    },
    notes: ['Classic: sendRecvTimeoutSeconds, 30 s, at most 240 s (https://github.com/terraform-providers/terraform-provider-azurerm/issues/7493).']
  }),
  cloud('alibaba-eas-gateway', 'Alibaba Cloud PAI-EAS dedicated gateway', {
    values: {
      serverIdleTimeout: v(sec(600), 'client-facing idle connection timeout (fixed)', EAS, { fixed: true, symptom: 'a client that reuses a connection idle longer gets `Connection reset by peer` / `Broken pipe`' }),
      clientIdleTimeout: v(sec(30), 'backend-facing idle connection timeout (fixed)', EAS, { fixed: true, symptom: 'a reset, 502 or 503: it reused a connection the model service had closed' }),
      requestTimeout: v(sec(600), 'request timeout (metadata.rpc.keepalive)', EAS, { confirmed: false, symptom: '504', note: 'TCP connect to the last response byte; the key and its default were not seen in the docs' })
    }
  }),
  cloud('knative', 'Knative Serving queue-proxy', {
    values: {
      requestTimeout: v(sec(300), 'timeoutSeconds', KNATIVE_DEFAULTS, { how: 'spec.template.spec.timeoutSeconds, or revision-timeout-seconds in config-defaults', symptom: '504 when nothing was written yet; the queue-proxy logs `error reverse proxying request`', note: 'per the queue-proxy source, not enforced after the first byte (anchors-features K2)', cap: { ms: sec(600), raisable: true, how: 'max-revision-timeout-seconds (600 s) in config-defaults' } }),
      firstByteTimeout: v(sec(300), 'responseStartTimeoutSeconds', KNATIVE_DEFAULTS, { how: 'spec.template.spec.responseStartTimeoutSeconds, or revision-response-start-timeout-seconds', symptom: '504', note: 'defaults to timeoutSeconds' }),
      streamIdleTimeout: v(null, 'idleTimeoutSeconds', KNATIVE_DEFAULTS, { how: 'spec.template.spec.idleTimeoutSeconds, or revision-idle-timeout-seconds' }),
      drainDelay: v(sec(30), 'queue-proxy drainSleepDuration', `${KNATIVE}/pkg/queue/sharedmain/main.go (drainSleepDuration = 30s)`),
      clientIdleTimeout: v(sec(90), 'queue-proxy upstream keep-alive (Go http.Transport IdleConnTimeout)', 'reference/anchors-features.md [K4]: the queue-proxy\'s Go transport keeps idle connections to the user container and does not follow its Keep-Alive; stale connections to a Node app (5 s) give "every other request EOF/502"', { confirmed: false, symptom: '502 with `error reverse proxying request` … `EOF` in the queue-proxy log, on a connection the app closed first', note: 'the Go transport default; the queue-proxy\'s own transport settings were not re-read' })
    },
    follows: { firstByteTimeout: 'requestTimeout' },
    podGrace: { follows: 'requestTimeout', setting: 'user pod terminationGracePeriodSeconds = timeoutSeconds', source: `${KNATIVE}/pkg/reconciler/revision/resources/deploy.go (pod.TerminationGracePeriodSeconds = rev.Spec.TimeoutSeconds)` },
    other: [
      { setting: 'activator terminationGracePeriodSeconds', ms: sec(600), meaning: 'the activator\'s own grace period', source: `${KNATIVE}/config/core/deployments/activator.yaml`, confirmed: true }
    ]
  })
]
