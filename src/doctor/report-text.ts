// The text report: findings, most severe first, then each hop's effective values and where each
// came from. Long sentences wrap with a hanging indent, for a terminal or a CI log.
import { fmt } from './format.ts'
import { PROPERTY_NAMES } from './properties.ts'
import { summary, type Report } from './report.ts'
import { origin } from './symptoms.ts'
import type { Finding, Hop, Workload } from './model.ts'

const WIDTH = 100

export function wrap (text: string, indent: string, width = WIDTH): string {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line !== '' && indent.length + line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line === '' ? word : `${line} ${word}`
    }
  }
  lines.push(line)
  return lines.map((l, i) => i === 0 ? l : `${indent}${l}`).join('\n')
}

function field (label: string, text: string): string {
  const indent = ' '.repeat(11)
  return `  ${label.padEnd(8)} ${wrap(text, indent)}`
}

function finding (f: Finding): string {
  const values = Object.entries(f.values).map(([name, v]) => `${name} = ${v.text} (${v.from})`)
  const lines = [
    `${f.severity.toUpperCase().padEnd(7)} ${f.rule} · ${f.hops.join(', ')}`,
    field('', f.problem),
    ...values.map((v, i) => field(i === 0 ? 'values' : '', v)),
    field('you see', f.symptom),
    field('fix', f.fix)
  ]
  return lines.join('\n')
}

function hopTable (hop: Hop): string {
  const head = `${hop.name}${hop.preset === null ? '' : ` (${hop.preset.name}${hop.mode === null ? '' : `, mode ${hop.mode}`})`}${hop.passThrough ? ' pass-through' : ''}${hop.from === null ? '' : `, read from ${hop.from}`}`
  const known = PROPERTY_NAMES.filter((p) => hop.values[p] !== undefined)
  const unknown = PROPERTY_NAMES.filter((p) => hop.values[p] === undefined)
  const rows = known.map((p) => {
    const value = hop.values[p]!
    return `  ${p.padEnd(18)} ${fmt(value.ms).padEnd(6)} ${wrap(origin(hop, value), ' '.repeat(28))}`
  })
  if (unknown.length > 0) rows.push(`  ${'unknown'.padEnd(25)} ${wrap(unknown.join(', '), ' '.repeat(28))}`)
  return [head, ...rows].join('\n')
}

/** The workload in one line: its phases (upload, first byte, stream), idle gaps and retries. */
export function workloadText (w: Workload): string {
  return [
    `${fmt(w.durationMs)} per request`,
    w.upload !== null && `an upload of ${fmt(w.upload.ms)}`,
    w.firstByteMs !== null && `first byte after ${fmt(w.firstByteMs)}`,
    w.streaming ? `streaming, silent for up to ${fmt(w.maxSilenceMs)}` : 'the answer comes at the end',
    w.idleBetweenRequestsMs !== null && `${fmt(w.idleBetweenRequestsMs)} idle between requests`,
    w.retries !== null && `retried ${w.retries.count}× on ${w.retries.on.join(', ')} (${w.retries.from})`
  ].filter((p): p is string => typeof p === 'string').join(', ')
}

export function textReport (report: Report): string {
  const { chain } = report
  const w = chain.workload
  const out = [
    `longhaul doctor: ${chain.file}`,
    `workload${w.name === null ? '' : ` "${w.name}"`}: ${workloadText(w)}`,
    `chain: ${chain.hops.map((h) => h.name).join(' → ')}`,
    '',
    `${summary(report)}.`,
    ''
  ]
  for (const f of report.findings) out.push(finding(f), '')
  out.push('hops: effective values (none = unlimited) and where each came from', '')
  for (const hop of chain.hops) out.push(hopTable(hop), '')
  if (chain.deploy !== null) out.push(`deploy: ${chain.deploy.hops.map((h) => h.name).join(' + ')}, terminationGracePeriod ${fmt(chain.deploy.graceMs)} (${chain.deploy.graceFrom})`, '')
  return out.join('\n')
}
