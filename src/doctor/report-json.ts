// The JSON report: the text report's content, machine-readable. Durations are integer
// milliseconds, null meaning unlimited (as in the admin endpoints).
import { summary, type Report } from './report.ts'

export function jsonReport (report: Report): string {
  const { chain } = report
  const w = chain.workload
  return `${JSON.stringify({
    file: chain.file,
    ok: report.counts.error === 0,
    summary: summary(report),
    counts: report.counts,
    workload: { name: w.name, durationMs: w.durationMs, streaming: w.streaming, maxSilenceMs: w.maxSilenceMs, idleBetweenRequestsMs: w.idleBetweenRequestsMs, firstByteMs: w.firstByteMs, upload: w.upload, retries: w.retries },
    cut: report.cut === null ? null : { atMs: report.cut.cutAtMs, rule: report.cut.rule, hops: report.cut.hops },
    findings: report.findings,
    hops: chain.hops.map((h) => ({ name: h.name, preset: h.preset?.name ?? null, mode: h.mode, passThrough: h.passThrough, from: h.from, config: h.config, values: h.values })),
    deploy: chain.deploy === null ? null : { hops: chain.deploy.hops.map((h) => h.name), terminationGracePeriodMs: chain.deploy.graceMs, from: chain.deploy.graceFrom }
  }, null, 2)}\n`
}
