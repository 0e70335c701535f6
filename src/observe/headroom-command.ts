// `longhaul headroom`: each route's limits against what its traffic really did, read from a
// running gateway's admin listener (/headroom), with a suggestion per limit. With --chain, no
// suggestion goes past a limit of a hop in front of the gateway, which would cut first.
import { Command, CommanderError, Option } from 'commander'
import { configSchema } from '../config/schema.ts'
import { formatDuration } from '../config/units.ts'
import { humanMs, suggest, MEASURES, type FrontLimit, type HeadroomDocument, type HeadroomRow, type Measure } from './headroom.ts'

/** The properties of a hop in front that cut each measure first (doctor vocabulary). */
const FRONT_PROPERTIES: Readonly<Record<Measure, readonly string[]>> = {
  firstByte: ['firstByteTimeout', 'streamIdleTimeout', 'requestTimeout'],
  streamSilence: ['streamIdleTimeout', 'requestTimeout'],
  total: ['requestTimeout'],
  uploadSilence: []
}

/** For each measure, the shortest limit among the hops in front of the chain's longhaul hop. */
async function frontLimits (chainFile: string): Promise<{ front: (measure: Measure, heartbeat: boolean) => FrontLimit | null }> {
  const { loadChain } = await import('../doctor/resolve.ts')
  const chain = await loadChain(chainFile)
  const gateway = chain.hops.find((h) => h.config !== null)
  if (gateway === undefined) throw new CommanderError(2, 'longhaul.usage', `${chainFile}: no longhaul hop (a hop with config:) to measure headroom against`)
  const inFront = chain.hops.filter((h) => h.index < gateway.index)
  return {
    front: (measure, heartbeat) => {
      let best: FrontLimit | null = null
      for (const hop of inFront) {
        for (const property of FRONT_PROPERTIES[measure]) {
          // The gateway's heartbeat keeps the hops in front from seeing a silence.
          if (heartbeat && property === 'streamIdleTimeout') continue
          const value = hop.values[property as keyof typeof hop.values]
          if (value === undefined || value.ms === null) continue
          if (best === null || value.ms < best.ms) best = { hop: hop.name, setting: value.setting, ms: value.ms }
        }
      }
      return best
    }
  }
}

function text (rows: readonly HeadroomRow[]): string {
  const header = ['route', 'limit', 'configured', 'p50', 'p99', 'max', 'requests', 'verdict']
  const table = rows.map((r) => [r.route, r.limit, formatDuration(r.configuredMs), humanMs(r.p50Ms), humanMs(r.p99Ms), humanMs(r.maxMs), String(r.count), r.verdict])
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()
  const out = [line(header)]
  for (let i = 0; i < rows.length; i++) {
    out.push(line(table[i]!))
    const r = rows[i]!
    if (r.verdict !== 'no data') out.push(`  ${r.suggestedMs !== null ? `suggest ${r.limit}: ${formatDuration(r.suggestedMs)} — ` : ''}${r.reason}`)
  }
  return `${out.join('\n')}\n`
}

async function headroom (options: { admin: string, json?: boolean, chain?: string }): Promise<void> {
  const base = /^https?:\/\//.test(options.admin) ? options.admin : `http://${options.admin}`
  let doc: HeadroomDocument
  try {
    const res = await fetch(`${base.replace(/\/+$/, '')}/headroom`, { signal: AbortSignal.timeout(10_000) })
    if (!res.ok) throw new Error(`${res.status} ${res.statusText}`)
    doc = await res.json() as HeadroomDocument
  } catch (err) {
    process.stderr.write(`longhaul headroom: cannot read ${base}/headroom: ${(err as Error).message}\n`)
    process.exitCode = 1
    return
  }
  let rows = doc.rows
  if (options.chain !== undefined) {
    const { front } = await frontLimits(options.chain)
    const outcomes = new Map(MEASURES.map((m) => [m.measure, m.outcome]))
    rows = rows.map((r) => ({ ...r, ...suggest(r.configuredMs, r.p99Ms, r.maxMs, r.limit, outcomes.get(r.measure)!, front(r.measure, (doc.heartbeatMs[r.route] ?? null) !== null)) }))
  }
  process.stdout.write(options.json === true ? `${JSON.stringify({ rows }, null, 2)}\n` : text(rows))
}

export function registerHeadroom (program: Command): void {
  const adminDefault = configSchema.shape.admin.parse(undefined).address
  program.command('headroom')
    .description('each route\'s timeouts against what its traffic really did (observed p50/p99/max), with suggestions')
    .addOption(new Option('--admin <url>', 'the gateway\'s admin listener').default(adminDefault))
    .option('--json', 'write JSON')
    .option('--chain <file>', 'a doctor chain file: never suggest a limit that a hop in front of the gateway would cut first')
    .action(headroom)
}
