// `longhaul probe URL [--max 10m] [--concurrency 5] [--http2] [--only LIMITS] [--chain CHAIN.yaml]
// [--json | --format text|json|html] [--out FILE]`. Exit codes: 0 measured, nothing alarming;
// 1 a clean cut, a difference with the chain file, an invalid chain file, or a URL that is not a
// probe target; 2 usage.
import { writeFile } from 'node:fs/promises'
import { CommanderError, Option, type Command } from 'commander'
import { parseDuration } from '../config/units.ts'
import { ConfigError, formatDiagnostic } from '../config/diagnostics.ts'
import { loadChain } from '../doctor/resolve.ts'
import { probe, ProbeRefused } from './run.ts'
import { compareWithChain } from './predict.ts'
import { htmlReport, jsonReport, planText, textReport, type FullReport } from './report.ts'
import { LIMIT_NAMES, type LimitName } from './trial.ts'

interface ProbeCliOptions { max: string, http2?: boolean, concurrency: string, only?: string, chain?: string, json?: boolean, format: 'text' | 'json' | 'html', out?: string }

const usage = (message: string): CommanderError => new CommanderError(2, 'longhaul.usage', message)
/** A probe request longer than this is a load test, not a probe. */
const MAX_MAX_MS = 60 * 60 * 1000

function options (url: string, o: ProbeCliOptions): { maxMs: number, concurrency: number, limits: LimitName[] } {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw usage(`invalid URL '${url}': write it with its scheme, e.g. http://127.0.0.1:8000/`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw usage(`the probe speaks http and https, not ${parsed.protocol}`)
  const maxMs = parseDuration(o.max)
  if (typeof maxMs === 'string') throw usage(`--max: ${maxMs}`)
  if (maxMs < 1000 || maxMs > MAX_MAX_MS) throw usage(`--max must be between 1s and 1h, got '${o.max}'`)
  const concurrency = Number(o.concurrency)
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 10) throw usage(`--concurrency must be 1-10, got '${o.concurrency}'`)
  const limits = o.only === undefined ? LIMIT_NAMES : o.only.split(',').map((s) => s.trim())
  for (const l of limits) if (!(LIMIT_NAMES as string[]).includes(l)) throw usage(`--only: unknown limit '${l}' (limits: ${LIMIT_NAMES.join(', ')})`)
  return { maxMs, concurrency, limits: limits as LimitName[] }
}

async function run (url: string, o: ProbeCliOptions): Promise<void> {
  const { maxMs, concurrency, limits } = options(url, o)
  const format = o.json === true ? 'json' : o.format
  try {
    // A chain file is checked before the run, not after minutes of probing.
    if (o.chain !== undefined) await loadChain(o.chain)
    const report = await probe(url, { maxMs, concurrency, limits, http2: o.http2 === true, onPlan: (p) => process.stderr.write(planText(p)) })
    const chain = o.chain === undefined ? null : await compareWithChain(o.chain, report)
    const full: FullReport = { ...report, chain }
    const text = { text: textReport, json: jsonReport, html: htmlReport }[format](full)
    if (o.out === undefined) process.stdout.write(text)
    else {
      await writeFile(o.out, text)
      process.stderr.write(`${o.out}: ${report.limits.filter((m) => m.status === 'found').length} limits found, ${report.cleanCuts} clean cuts${chain === null ? '' : `, ${chain.differences} differences with ${o.chain}`}\n`)
    }
    process.exitCode = report.cleanCuts > 0 || (chain?.differences ?? 0) > 0 ? 1 : 0
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const d of err.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`)
    } else if (err instanceof ProbeRefused) {
      process.stderr.write(`longhaul probe: ${err.message}\n`)
    } else throw err
    process.exitCode = 1
  }
}

/** Adds the `probe` subcommand to longhaul's command line. */
export function registerProbe (program: Command): void {
  program.command('probe')
    .description('measure a live chain\'s limits from the client\'s seat, against the probe target (longhaul demo-upstream), and name the hop that cut')
    .argument('<url>', 'the chain\'s URL; the probe talks only to URL/longhaul-probe/...')
    .option('--max <duration>', 'longest probe request; a limit beyond it is reported as none', '10m')
    .option('--concurrency <n>', 'limits measured at the same time (one request each)', '5')
    .option('--only <limits>', `comma-separated subset of: ${LIMIT_NAMES.join(', ')}`)
    .option('--http2', 'probe over HTTP/2 (h2 by ALPN on https://, prior knowledge on http://): resets show as RST_STREAM codes')
    .option('--chain <file>', 'a doctor chain file: each measured limit beside the doctor\'s prediction')
    .option('--json', 'same as --format json')
    .addOption(new Option('-f, --format <format>', 'report format').choices(['text', 'json', 'html']).default('text'))
    .option('-o, --out <file>', 'write the report to this file instead of stdout')
    .action(run)
}
