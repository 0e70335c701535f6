// The HTML report: one self-contained page (no scripts, no external files) with the verdict, the
// timeline, the keep-alive pairs, the findings and the per-hop values.
import { fmt } from './format.ts'
import { PROPERTY_NAMES } from './properties.ts'
import { countsText, cutLabel, plural, type Report } from './report.ts'
import { origin } from './symptoms.ts'
import { workloadText } from './report-text.ts'
import { esc, timelineSvg } from './timeline-svg.ts'
import type { Chain, Finding } from './model.ts'

/** Escapes, then shows `code` spans as code. */
function rich (text: string): string {
  return esc(text).replace(/`([^`]+)`/g, '<code>$1</code>')
}

function verdict (report: Report): string {
  const { cut, counts } = report
  if (counts.error === 0) {
    return `<div class="verdict ok"><b>No errors: a ${fmt(report.chain.workload.durationMs)} request gets through this chain.</b> <span>${esc(countsText(report))}</span></div>`
  }
  const head = cut === null ? `${plural(counts.error, 'error')}: ${errorGist(report)}.` : `The request is cut at ${esc(cutLabel(cut))}.`
  return `<div class="verdict bad"><b>${head}</b> <span>${esc(countsText(report))}</span></div>`
}

const GIST: Readonly<Record<string, string>> = {
  'termination-grace': 'every rollout cuts requests in flight',
  'idle-nesting': 'reused keep-alive connections fail at random'
}

/** What the errors do, when none of them cuts every request. */
function errorGist (report: Report): string {
  const rules = [...new Set(report.findings.filter((f) => f.severity === 'error').map((f) => f.rule))]
  return rules.map((r) => GIST[r] ?? r).join('; ')
}

/** Each client/server pair of idle keep-alive timers, and whether they nest. */
function idlePairs (chain: Chain, findings: readonly Finding[]): string {
  const rows: string[] = []
  for (let s = 1; s < chain.hops.length; s++) {
    const server = chain.hops[s]!
    let c = s - 1
    while (c > 0 && chain.hops[c]!.passThrough) c--
    const client = chain.hops[c]!
    const a = client.values.clientIdleTimeout?.ms
    const b = server.values.serverIdleTimeout?.ms
    const bad = findings.find((f) => f.rule === 'idle-nesting' && f.hops[0] === client.name && f.hops[f.hops.length - 1] === server.name)
    const state = bad !== undefined
      ? `<td class="${bad.severity}">✗ ${bad.severity === 'error' ? 'stale reuse: resets, 502/503' : 'stale reuse after quiet periods'}</td>`
      : b === null ? '<td class="okc">✓ the server never closes them</td>' : a === undefined || b === undefined ? '<td class="dim">? unknown</td>' : '<td class="okc">✓ nests</td>'
    rows.push(`<tr><td>${esc(client.name)} keeps idle connections</td><td class="num">${esc(fmt(a))}</td><td>${esc(server.name)} closes them after</td><td class="num">${esc(b === null ? 'never' : fmt(b))}</td>${state}</tr>`)
  }
  return `<table class="pairs">${rows.join('')}</table>`
}

function findingCard (f: Finding): string {
  const values = Object.entries(f.values).map(([name, v]) => `<li><code>${esc(name)}</code> = <b>${esc(v.text)}</b> <span class="from">${esc(v.from)}</span></li>`).join('')
  return `<section class="finding ${f.severity}">
<h3><span class="sev">${f.severity}</span> <code>${f.rule}</code> · ${esc(f.hops.join(', '))}</h3>
<p>${rich(f.problem)}</p>
<ul class="values">${values}</ul>
<p><b>You see:</b> ${rich(f.symptom)}</p>
<p><b>Fix:</b> ${rich(f.fix)}</p>
</section>`
}

function hopsTable (chain: Chain): string {
  const rows = chain.hops.flatMap((hop) => {
    const known = PROPERTY_NAMES.filter((p) => hop.values[p] !== undefined)
    return known.map((p, i) => {
      const value = hop.values[p]!
      const head = i === 0 ? `<td rowspan="${known.length}" class="hopname">${esc(hop.name)}<br><span class="dim">${esc([hop.preset?.name ?? '', hop.mode === null ? '' : `mode ${hop.mode}`, hop.passThrough ? 'pass-through' : ''].filter((x) => x !== '').join(', '))}${hop.from === null ? '' : `<br>read from ${esc(hop.from)}`}</span></td>` : ''
      return `<tr>${head}<td><code>${p}</code></td><td class="num">${esc(fmt(value.ms))}</td><td class="${value.confirmed ? '' : 'unconfirmed'}">${esc(origin(hop, value))}</td></tr>`
    })
  })
  return `<table class="hops"><tr><th>hop</th><th>property</th><th>value</th><th>where it came from</th></tr>${rows.join('')}</table>`
}

const CSS = `
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;color:#212121;margin:0;background:#fff}
main{max-width:1200px;margin:0 auto;padding:18px 20px 40px}
h1{font-size:22px;margin:0 0 2px}h2{font-size:17px;margin:26px 0 8px}.sub{color:#616161;margin:0 0 12px}
.verdict{padding:10px 14px;border-radius:6px;margin:8px 0 14px;font-size:16px}.verdict span{color:#424242;font-size:14px;margin-left:8px}
.verdict.bad{background:#ffebee;border-left:6px solid #c62828}.verdict.ok{background:#e8f5e9;border-left:6px solid #2e7d32}
.legend{color:#616161;font-size:13px;margin:4px 0 0}.legend i{display:inline-block;width:22px;height:10px;border-radius:2px;margin:0 4px 0 12px;vertical-align:middle}
.finding{border-left:5px solid #9e9e9e;background:#fafafa;padding:6px 14px;margin:10px 0;border-radius:4px}
.finding.error{border-color:#c62828}.finding.warning{border-color:#ef6c00}.finding.info{border-color:#1565c0}
.finding h3{margin:4px 0;font-size:15px}.finding p{margin:5px 0}.sev{text-transform:uppercase;font-size:12px;font-weight:700;padding:1px 6px;border-radius:3px;color:#fff;background:#9e9e9e}
.error .sev{background:#c62828}.warning .sev{background:#ef6c00}.info .sev{background:#1565c0}
.values{margin:4px 0;padding-left:18px;font-size:13px}.from{color:#757575}
code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;background:#eceff1;padding:0 3px;border-radius:3px}
table{border-collapse:collapse;font-size:13px}td,th{padding:4px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.dim{color:#757575}.hopname{font-weight:600}
td.error{color:#c62828;font-weight:600}td.warning{color:#ef6c00;font-weight:600}td.okc{color:#2e7d32;font-weight:600}
.unconfirmed{color:#8d6e63}.unconfirmed::after{content:" ⚠"}
svg{max-width:100%;height:auto;display:block}
`

export function htmlReport (report: Report): string {
  const { chain, findings, cut } = report
  const w = chain.workload
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>longhaul doctor: ${esc(w.name ?? chain.file)}</title><style>${CSS}</style></head>
<body><main>
<h1>longhaul doctor${w.name === null ? '' : `: ${esc(w.name)}`}</h1>
<p class="sub">${esc(chain.hops.map((h) => h.name).join(' → '))} · ${esc(workloadText(w))} · <code>${esc(chain.file)}</code></p>
${verdict(report)}
<h2>One request, hop by hop</h2>
${timelineSvg(chain, findings, cut)}
<p class="legend">Each bar is one limit of that hop, from the moment it starts counting (an idle limit from the start of the silence).<i style="background:#c62828"></i>cuts the request (an error)<i style="background:#ef6c00"></i>a warning<i style="background:#2e7d32"></i>lets it through<i style="background:#a5d6a7"></i>no limit<i style="background:repeating-linear-gradient(45deg,#bbdefb 0 4px,#64b5f6 4px 7px)"></i>silence<i style="border-top:2px dashed #1565c0;height:0;border-radius:0"></i>the request ends<span style="color:#ad1457;margin-left:12px">♦</span> heartbeat</p>
<h2>Keep-alive between requests: each client must give up an idle connection before its server does</h2>
${idlePairs(chain, findings)}
<h2>Findings (${findings.length})</h2>
${findings.length === 0 ? '<p>None.</p>' : findings.map(findingCard).join('\n')}
<h2>Effective values</h2>
${hopsTable(chain)}
${chain.deploy === null ? '' : `<p class="sub">Pod of ${esc(chain.deploy.hops.map((h) => h.name).join(' + '))}: terminationGracePeriod ${esc(fmt(chain.deploy.graceMs))} (${esc(chain.deploy.graceFrom)})</p>`}
</main></body></html>
`
}
