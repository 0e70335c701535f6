// The live admin page (GET / on the admin listener): requests in flight with a bar per limit,
// recent outcomes, endpoints, headroom, drain state. One self-contained HTML document, no build
// step, no external asset. The server renders the tables (readable without JavaScript); the
// script re-renders them from /live (SSE) with the very same function, sent as its source, and
// moves the bars between updates on the browser's clock.

import type { InflightRequest } from '../gateway/server.ts'

/** Requests a snapshot lists at most: with thousands of streams in flight, the oldest matter and the page stays cheap. */
export const LIVE_MAX_REQUESTS = 200

/** What the page shows; /live sends one of these per update. */
export interface LiveSnapshot {
  /** Epoch ms when it was taken. */
  readonly at: number
  readonly state: string
  readonly drain: { readonly inflight: number, readonly oldestMs: number } | null
  /** The oldest requests in flight, at most LIVE_MAX_REQUESTS of them; inflightCount is all of them. */
  readonly inflight: ReadonlyArray<LiveRequest>
  readonly inflightCount: number
  /** Outcomes of the last minutes, by outcome. */
  readonly outcomes: { readonly windowMinutes: number, readonly counts: Readonly<Record<string, number>> }
  readonly upstreams: ReadonlyArray<{ readonly name: string, readonly panic: boolean, readonly queued: number, readonly endpoints: ReadonlyArray<{ readonly url: string, readonly healthy: boolean, readonly inflight: number }> }>
  readonly headroom: ReadonlyArray<{ readonly route: string, readonly limit: string, readonly label: string, readonly configuredMs: number | null, readonly count: number, readonly p99Ms: number | null, readonly maxMs: number | null, readonly verdict: string, readonly reason: string }>
  /** With workers: which worker each request is on (absent with one process). */
  readonly workers?: ReadonlyArray<{ readonly id: number, readonly inflight: number, readonly state: string }>
}

/** A request in flight as the gateway reports it, and with workers, the worker it is on. */
export type LiveRequest = InflightRequest & { readonly worker?: number }

/**
 * The page's sections from a snapshot. Self-contained on purpose (no imports, no closures): the
 * browser gets its source text and runs the same function, so the two renderings cannot differ.
 */
export function renderSections (s: LiveSnapshot): string {
  const esc = (v: unknown): string => String(v).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
  const dur = (ms: number | null): string => {
    if (ms === null) return 'none'
    if (ms < 1000) return `${Math.round(ms)}ms`
    if (ms < 60000) return `${(ms / 1000).toFixed(1)}s`
    const sec = Math.round(ms / 1000)
    return `${Math.floor(sec / 60)}m${String(sec % 60).padStart(2, '0')}s`
  }
  const bytes = (n: number): string => n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`
  const bar = (c: { limit: string, outcome: string, limitMs: number, elapsedMs: number }): string => {
    const share = Math.min(1, c.elapsedMs / c.limitMs)
    const level = share >= 0.9 ? 'hot' : share >= 0.6 ? 'warm' : 'cool'
    return `<div class="clock" title="${esc(c.outcome)} at ${esc(dur(c.limitMs))}"><span class="name">${esc(c.limit)}</span>` +
      `<span class="bar"><span class="fill ${level}" data-elapsed="${c.elapsedMs}" data-limit="${c.limitMs}" style="width:${(share * 100).toFixed(1)}%"></span></span>` +
      `<span class="val" data-elapsed="${c.elapsedMs}">${esc(dur(c.elapsedMs))}</span> / ${esc(dur(c.limitMs))}</div>`
  }
  const parts: string[] = []
  const stateNote = s.drain === null ? '' : ` — draining: ${s.drain.inflight} in flight, oldest ${dur(s.drain.oldestMs)}`
  parts.push(`<p id="state" class="state-${esc(s.state)}">state <b>${esc(s.state)}</b>${esc(stateNote)} · ${s.inflightCount} in flight${s.inflightCount > s.inflight.length ? ` (the ${s.inflight.length} oldest shown)` : ''} · updated <time data-at="${s.at}">${esc(new Date(s.at).toISOString())}</time></p>`)
  if (s.workers !== undefined && s.workers.length > 0) {
    parts.push(`<h2>Workers</h2><table id="workers"><thead><tr><th>worker</th><th>state</th><th>in flight</th></tr></thead><tbody>${s.workers.map((w) => `<tr><td>${w.id}</td><td>${esc(w.state)}</td><td>${w.inflight}</td></tr>`).join('')}</tbody></table>`)
  }
  parts.push('<h2>In flight</h2>')
  if (s.inflight.length === 0) parts.push('<p class="empty" id="inflight-empty">nothing in flight</p>')
  else {
    const showWorker = s.inflight.some((r) => r.worker !== undefined)
    parts.push(`<table id="inflight"><thead><tr>${showWorker ? '<th>worker</th>' : ''}<th>request</th><th>route → upstream</th><th>endpoint</th><th>age</th><th>bytes in / out</th><th>limits</th></tr></thead><tbody>` +
      s.inflight.map((r) => `<tr data-id="${esc(r.id)}">${showWorker ? `<td>${esc(r.worker ?? '')}</td>` : ''}<td><code>${esc(r.method)} ${esc(r.path)}</code><br><small>${esc(r.id)}</small></td>` +
        `<td>${esc(r.route)} → ${esc(r.upstream)}</td><td>${esc(r.endpoint)}</td><td class="age" data-elapsed="${r.ageMs}">${esc(dur(r.ageMs))}</td>` +
        `<td>${esc(bytes(r.bytesIn))} / ${esc(bytes(r.bytesOut))}</td><td class="clocks">${r.clocks.map(bar).join('')}</td></tr>`).join('') +
      '</tbody></table>')
  }
  const outcomes = Object.entries(s.outcomes.counts).sort((a, b) => b[1] - a[1])
  parts.push(`<h2>Outcomes, last ${s.outcomes.windowMinutes} minutes</h2>`)
  parts.push(outcomes.length === 0 ? '<p class="empty">no request finished yet</p>'
    : `<table id="outcomes"><thead><tr><th>outcome</th><th>requests</th></tr></thead><tbody>${outcomes.map(([o, n]) => `<tr class="${o === 'ok' ? 'good' : 'bad'}"><td>${esc(o)}</td><td>${n}</td></tr>`).join('')}</tbody></table>`)
  parts.push('<h2>Upstreams</h2>')
  parts.push(`<table id="upstreams"><thead><tr><th>upstream</th><th>endpoint</th><th>health</th><th>in flight</th></tr></thead><tbody>${s.upstreams.flatMap((u) => u.endpoints.map((e) =>
    `<tr><td>${esc(u.name)}${u.panic ? ' <b class="bad">panic</b>' : ''}${u.queued > 0 ? ` <small>${u.queued} queued</small>` : ''}</td><td>${esc(e.url)}</td><td class="${e.healthy ? 'good' : 'bad'}">${e.healthy ? 'healthy' : 'out of rotation'}</td><td>${e.inflight}</td></tr>`)).join('')}</tbody></table>`)
  parts.push('<h2>Timeout headroom</h2>')
  parts.push(`<table id="headroom"><thead><tr><th>route</th><th>limit</th><th>configured</th><th>observed p99 / max</th><th>requests</th><th>verdict</th></tr></thead><tbody>${s.headroom.map((h) =>
    `<tr class="verdict-${esc(h.verdict.replace(' ', '-'))}"><td>${esc(h.route)}</td><td>${esc(h.limit)}<br><small>${esc(h.label)}</small></td><td>${esc(dur(h.configuredMs))}</td><td>${h.count === 0 ? '-' : `${esc(dur(h.p99Ms))} / ${esc(dur(h.maxMs))}`}</td><td>${h.count}</td><td><b>${esc(h.verdict)}</b><br><small>${esc(h.reason)}</small></td></tr>`).join('')}</tbody></table>`)
  return parts.join('\n')
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1a1a1a;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .2em}h2{font-size:1.05em;margin:1.4em 0 .4em}
table{border-collapse:collapse;background:#fff;min-width:40em}th,td{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f0f0f0;font-weight:600}small{color:#666}code{font-size:.95em}
.clock{display:flex;align-items:center;gap:.4em;white-space:nowrap;font-size:.9em}
.clock .name{width:6.5em}.clock .bar{display:inline-block;width:12em;height:.8em;background:#eee;border:1px solid #ccc;border-radius:2px;overflow:hidden}
.fill{display:block;height:100%}.fill.cool{background:#4a9d5b}.fill.warm{background:#d9a400}.fill.hot{background:#d23c2a}
.good{color:#2a7a3a}.bad{color:#b3261e}.empty{color:#666}.state-draining b{color:#b3261e}
.verdict-tight b,.verdict-exceeded b{color:#b3261e}.verdict-ok b{color:#2a7a3a}
`

/** The browser side: re-render on each /live message, move bars on the local clock in between. */
function clientScript (): string {
  return `
${renderSections.toString()}
const root = document.getElementById('live')
let receivedAt = performance.now()
function tick () {
  const gone = performance.now() - receivedAt
  for (const el of root.querySelectorAll('.fill')) {
    const share = Math.min(1, (Number(el.dataset.elapsed) + gone) / Number(el.dataset.limit))
    el.style.width = (share * 100).toFixed(1) + '%'
    el.className = 'fill ' + (share >= 0.9 ? 'hot' : share >= 0.6 ? 'warm' : 'cool')
  }
  requestAnimationFrame(tick)
}
const source = new EventSource('live')
source.addEventListener('snapshot', (e) => {
  root.innerHTML = renderSections(JSON.parse(e.data))
  receivedAt = performance.now()
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1)
})
requestAnimationFrame(tick)
`
}

/** The whole page for a first snapshot. */
export function renderPage (snapshot: LiveSnapshot): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>longhaul — live</title><style>${STYLE}</style></head>
<body><h1>longhaul — live</h1><p><small>Requests in flight and how close each is to its limits. Updates live; without JavaScript, reload the page.</small></p>
<main id="live">${renderSections(snapshot)}</main>
<script type="module">${clientScript()}</script>
</body></html>
`
}
