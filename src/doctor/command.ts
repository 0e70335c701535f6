// `longhaul doctor CHAIN.yaml… [--from PATH…] [--format text|json|html] [--out FILE] [--presets]` (issues 7, 14).
// Exit codes: 0 no finding is an error, 1 an error finding or an invalid chain file (in any of them), 2 usage.
import { writeFile } from 'node:fs/promises'
import { CommanderError, Option, type Command } from 'commander'
import { ConfigError, formatDiagnostic } from '../config/diagnostics.ts'
import { doctorReport, summary } from './report.ts'
import { textReport } from './report-text.ts'
import { jsonReport } from './report-json.ts'
import { htmlReport } from './report-html.ts'
import { presetsJson, presetsText } from './report-presets.ts'

type Format = 'text' | 'json' | 'html'

interface DoctorOptions { format: Format, out?: string, presets?: boolean, from?: string[] }

const usage = (message: string): CommanderError => new CommanderError(2, 'longhaul.usage', message)

async function emit (text: string, out: string | undefined): Promise<void> {
  if (out === undefined) process.stdout.write(text)
  else await writeFile(out, text)
}

async function doctor (chainFiles: string[], options: DoctorOptions): Promise<void> {
  if (options.presets === true) {
    if (chainFiles.length > 0) throw usage('--presets lists the presets; run it without a chain file')
    if (options.format === 'html') throw usage('--presets writes text or json')
    await emit(options.format === 'json' ? presetsJson() : presetsText(), options.out)
    return
  }
  if (chainFiles.length === 0) throw usage(options.from === undefined ? 'doctor needs a chain file (see docs/doctor.md), or --presets' : '--from needs a chain file for the workload (it may hold only workload: and the client hop): longhaul doctor CHAIN.yaml --from PATH…')
  if (chainFiles.length > 1 && options.format === 'html') throw usage('--format html is one page per chain: give one chain file')
  // Several chains: one report after the other (text), or an array of reports (json).
  const rendered: string[] = []
  let failed = false
  for (const chainFile of chainFiles) {
    let report
    try {
      report = await doctorReport(chainFile, options.from ?? [])
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      for (const d of err.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`)
      failed = true
      continue
    }
    const render = { text: textReport, json: jsonReport, html: htmlReport }[options.format]
    rendered.push(render(report))
    if (options.out !== undefined) process.stderr.write(`${options.out}: ${chainFiles.length > 1 ? `${chainFile}: ` : ''}${summary(report)}\n`)
    if (report.counts.error > 0) failed = true
  }
  if (rendered.length > 0) {
    const many = chainFiles.length > 1
    await emit(options.format === 'json' && many ? `[${rendered.map((r) => r.trimEnd()).join(',\n')}]\n` : rendered.join(many ? '\n' : ''), options.out)
  }
  process.exitCode = failed ? 1 : 0
}

/** Adds the `doctor` subcommand to longhaul's command line. */
export function registerDoctor (program: Command): void {
  program.command('doctor')
    .description('check how the timeouts of a whole request path fit together: exit 0 when no finding is an error, 1 otherwise')
    .argument('[chains...]', 'chain files (YAML): the workload, the hops from client to app, the deployment; each gets its report')
    .addOption(new Option('-f, --format <format>', 'report format').choices(['text', 'json', 'html']).default('text'))
    .option('-o, --out <file>', 'write the report to this file instead of stdout')
    .option('--from <paths...>', 'real files whose hops come after the chain file\'s: Kubernetes manifests (a file or directory), nginx.conf, haproxy.cfg, an Envoy bootstrap or config dump')
    .option('--presets', 'list the presets with their values and sources')
    .action(doctor)
}
