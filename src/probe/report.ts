// The probe's report as text (for a terminal), JSON (for scripts) and HTML (one self-contained page).
import { esc } from '../doctor/timeline-svg.ts'
import type { ChainComparison } from './predict.ts'
import type { MeasuredLimit, ProbePlan, ProbeReport } from './run.ts'

export interface FullReport extends ProbeReport {
  chain: ChainComparison | null
}

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`

export function planText (p: ProbePlan): string {
  return `longhaul probe: ${p.url} over ${p.protocol}${p.reachedThrough === null ? '' : ` (reached through ${p.reachedThrough})`}
  measuring ${p.limits.length} limits: ${p.limits.join(', ')}
  each probe request lasts at most ${seconds(p.maxMs)} (--max) plus its own deadline; at most ${p.concurrency} at a time; the run ends within ${seconds(p.boundMs)}
`
}

export function measuredText (m: MeasuredLimit): string {
  if (m.status === 'none') return `none up to ${seconds(m.lowMs!)}`
  if (m.status === 'unfinished') return 'not measured'
  return `${seconds(m.ms!)} ±${seconds(m.toleranceMs!)}`
}

const CLEAN_WARNING = (m: MeasuredLimit): string =>
  `!!! CLEAN CUT: ${m.title} — the response was truncated at ${seconds(m.cut!.atMs ?? 0)} and ended as if it were complete. No client can tell it from a real end: a partial answer will be taken for the whole one. Find the hop that ends a stream cleanly when it cuts it, and make it reset the connection instead.`

export function textReport (r: FullReport): string {
  const lines: string[] = []
  lines.push(`longhaul probe ${r.url}: ${r.limits.filter((m) => m.status === 'found').length} limits found in ${seconds(r.durationMs)}; precision ±5 % or ±250 ms`)
  for (const m of r.limits.filter((x) => x.cut?.clean === true)) lines.push('', CLEAN_WARNING(m))
  lines.push('', `${'limit'.padEnd(24)} ${'measured'.padEnd(20)} ${'hop'.padEnd(10)} how the cut came`)
  for (const m of r.limits) {
    const how = m.cut === null ? '' : `${m.cut.when}${m.cut.clean ? ' (CLEAN: looks complete)' : ''}`
    lines.push(`${m.title.padEnd(24)} ${measuredText(m).padEnd(20)} ${(m.cut?.hop ?? (m.status === 'found' ? '?' : '')).padEnd(10)} ${how}`.trimEnd())
  }
  for (const m of r.limits) {
    if (m.cut === null) continue
    const c = m.cut
    lines.push('', `${m.title} (${m.phase}): ${m.status === 'found' ? `cut at ${seconds(m.ms!)}; survived ${seconds(m.lowMs!)}` : `not settled: ${m.reason ?? ''}`}`)
    lines.push(`  client saw: ${c.client}`)
    lines.push(`              ${c.curl}`)
    if (c.body !== '') lines.push(`  body:       ${c.body.replace(/\s+/g, ' ').trim().slice(0, 160)}`)
    lines.push(`  target saw: ${c.target}`)
    lines.push(`  hop:        ${c.hop ?? 'not named'} — ${c.by}`)
    lines.push(`  trials:     ${m.trials.map((t) => `${seconds(t.ms)} ${t.result}${t.atMs === null ? '' : ` at ${seconds(t.atMs)}`}`).join(', ')}`)
  }
  if (r.chain !== null) {
    lines.push('', `against the doctor's prediction for ${r.chain.file}: ${r.chain.differences === 0 ? 'no difference' : `${r.chain.differences} difference${r.chain.differences === 1 ? '' : 's'}`}`)
    for (const c of r.chain.comparisons) {
      const mark = c.agree === false ? 'DIFFERENT' : c.agree === true ? 'same' : '-'
      lines.push(`  ${mark.padEnd(9)} ${c.title.padEnd(24)} ${c.note}`)
    }
  }
  return `${lines.join('\n')}\n`
}

export function jsonReport (r: FullReport): string {
  return `${JSON.stringify(r, null, 2)}\n`
}

export function htmlReport (r: FullReport): string {
  const rows = r.limits.map((m) => {
    const c = m.cut
    return `<tr${c?.clean === true ? ' class="clean"' : ''}><th>${esc(m.title)}<br><small>${esc(m.phase)}</small></th><td>${esc(measuredText(m))}</td><td>${esc(c?.hop ?? '')}</td><td>${c === null ? '' : `${esc(c.when)}<br>${esc(c.client)}<br><code>${esc(c.curl)}</code><br><small>${esc(c.by)}</small><br><small>target: ${esc(c.target)}</small>`}</td></tr>`
  }).join('\n')
  const warnings = r.limits.filter((m) => m.cut?.clean === true).map((m) => `<p class="warn">${esc(CLEAN_WARNING(m))}</p>`).join('\n')
  const chain = r.chain === null
    ? ''
    : `<h2>Against the doctor's prediction (${esc(r.chain.file)})</h2><table><tr><th>limit</th><th></th><th>what the probe and the doctor say</th></tr>${r.chain.comparisons.map((c) => `<tr${c.agree === false ? ' class="diff"' : ''}><th>${esc(c.title)}</th><td>${c.agree === false ? 'DIFFERENT' : c.agree === true ? 'same' : '-'}</td><td>${esc(c.note)}</td></tr>`).join('')}</table>`
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>longhaul probe ${esc(r.url)}</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.4em;text-align:left;vertical-align:top}tr.clean,tr.diff{background:#fdd}.warn{background:#c00;color:#fff;padding:.6em;font-weight:bold}code{font-size:12px}</style></head>
<body><h1>longhaul probe ${esc(r.url)}</h1>
<p>${esc(`${r.limits.filter((m) => m.status === 'found').length} limits found in ${seconds(r.durationMs)}, ${r.startedAt}; precision ±5 % or ±250 ms; longest probe request ${seconds(r.maxMs)}`)}</p>
${warnings}
<table><tr><th>limit</th><th>measured</th><th>hop</th><th>the cut</th></tr>
${rows}
</table>
${chain}
</body></html>
`
}
