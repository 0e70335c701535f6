// One diagnosis, as every report format reads it.
import { loadChain } from './resolve.ts'
import { fmt } from './format.ts'
import { cutPoint, diagnose } from './rules.ts'
import type { Chain, Finding, Severity } from './model.ts'

export interface Report {
  readonly chain: Chain
  readonly findings: readonly Finding[]
  /** The finding that cuts the request first, if any. */
  readonly cut: Finding | null
  readonly counts: Readonly<Record<Severity, number>>
}

export function buildReport (chain: Chain): Report {
  const findings = diagnose(chain)
  const counts = { error: 0, warning: 0, info: 0 }
  for (const f of findings) counts[f.severity]++
  return { chain, findings, cut: cutPoint(findings), counts }
}

/** Loads a chain file and diagnoses it; throws ConfigError when the file is invalid. */
export async function doctorReport (file: string, from: readonly string[] = []): Promise<Report> {
  return buildReport(await loadChain(file, { from }))
}

export function plural (n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

export function countsText (report: Report): string {
  const { counts } = report
  const parts = [plural(counts.error, 'error'), plural(counts.warning, 'warning'), plural(counts.info, 'note')].filter((p) => !p.startsWith('0 '))
  return report.findings.length === 0 ? 'no findings' : parts.join(', ')
}

export function summary (report: Report): string {
  const head = countsText(report)
  return report.cut === null ? head : `${head}; the request is first cut at ${cutLabel(report.cut)}`
}

export function cutLabel (cut: Finding): string {
  return `${fmt(cut.cutAtMs)} by ${cut.hops.join(' + ')} (${cut.rule})`
}
