// The chain file (issue 7, public format): parsed with positions and checked against its schema,
// so every problem is `FILE:LINE:COL path: message`, as in `longhaul check`.
import { z } from 'zod'
import { duration, durationOrNone, size } from '../config/schema.ts'
import type { Locator } from '../config/locate.ts'
import { checkSchema, parseYaml, readYamlFile } from '../config/yaml.ts'
import { ConfigError, didYouMean, formatPath, type ConfigPath, type Diagnostic } from '../config/diagnostics.ts'

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, { error: 'names use letters, digits, - _ . and start with a letter or digit' })

const hop = z.strictObject({
  name: name.optional().describe('What the hop is called in findings (a from: entry may leave it out: the files name their hops).'),
  from: z.union([z.string(), z.array(z.string()).min(1)]).optional().describe('Real files the hop reads its settings from (relative to the chain file): Kubernetes manifests or a directory of them, nginx.conf, haproxy.cfg, an Envoy bootstrap or config dump. Several hops when the files describe several.'),
  path: z.string().regex(/^\//, { error: 'a request path, starting with /' }).optional().describe('from: the request path, to pick the HTTPRoute rule, Ingress path, nginx location or Envoy route it takes.'),
  preset: z.string().optional().describe('A component from `longhaul doctor --presets`.'),
  // Keys are checked against the properties (and the preset's known pitfalls) after parsing, with positions.
  set: z.record(z.string(), durationOrNone).optional().describe('Values that override the preset: a duration, or none for unlimited.'),
  mode: z.string().optional().describe('The preset\'s mode (gunicorn: sync, gthread, uvicorn-worker; an SDK: python, node); `--presets` lists them.'),
  config: z.string().optional().describe('preset longhaul: a longhaul config file, relative to the chain file.'),
  route: z.string().optional().describe('preset longhaul: the route of that config the request takes.'),
  passThrough: z.boolean().optional().describe('A layer-4 hop: it forwards connections and keeps no pool of its own.'),
  symptom: z.string().min(1).optional().describe('What a stream cut behind this hop looks like in front of it (for the first hop: what the client shows).')
})

const RETRY_TRIGGER = 'a status (100-599), timeout (its own limit fired) or reset (the connection broke)'
const retryTrigger = z.union([z.int(), z.enum(['timeout', 'reset'])], { error: RETRY_TRIGGER })
  .refine((t) => typeof t !== 'number' || (t >= 100 && t <= 599), { error: RETRY_TRIGGER })

/** `1MiB/s`: a size per second. */
const rate = z.string().regex(/^\d+(B|KiB|MiB|GiB)\/s$/, { error: (i) => `invalid rate '${String(i.input)}': write a size per second, e.g. '1MiB/s'` })
  .transform((text) => size.parse(text.slice(0, -2)))

export const chainSchema = z.strictObject({
  workload: z.strictObject({
    name: z.string().optional(),
    duration: duration.describe('How long one request lasts, end to end.'),
    streaming: z.boolean().default(false).describe('Response bytes flow during the request (false: all at the end).'),
    maxSilence: duration.optional().describe('Streaming: the longest gap between response bytes.'),
    idleBetweenRequests: duration.optional().describe('Typical idle gap on a kept-alive connection.'),
    firstByte: duration.optional().describe('Time from the request to the first response byte (a stream\'s first token when nothing comes before it).'),
    upload: z.strictObject({
      size: size.describe('Request body size.'),
      rate: rate.describe('How fast the client sends it, e.g. 1MiB/s.')
    }).optional().describe('A request body that takes time to arrive; its time counts in duration.'),
    retries: z.strictObject({
      count: z.int().min(0).max(10),
      on: z.array(retryTrigger).min(1)
    }).optional().describe('The client sends the request again this many times after these failures (default: its preset\'s).')
  }),
  // At least two once from: entries are read (checked then).
  hops: z.array(hop).optional(),
  deploy: z.strictObject({
    hop: z.union([name, z.array(name).min(1)], { error: 'hop: a hop name, or a list of the hops that share the pod' }).optional(),
    terminationGracePeriod: duration.optional()
  }).optional()
})

export type ChainSpec = z.output<typeof chainSchema>

/** Reports a problem at the position of the node a path names (the key itself with `key: true`). */
export class ChainDiagnostics {
  readonly file: string
  readonly list: Diagnostic[] = []
  readonly #locator: Locator | null
  constructor (file: string, locator: Locator | null) {
    this.file = file
    this.#locator = locator
  }

  error (path: ConfigPath, message: string, options: { key?: boolean } = {}): void {
    const { line, col } = this.#locator?.at(path, options) ?? { line: 1, col: 1 }
    this.list.push({ severity: 'error', file: this.file, line, col, path: formatPath(path), message })
  }

  /** FILE:LINE:COL of a node, for provenance. */
  where (path: ConfigPath): string {
    const { line, col } = this.#locator?.at(path) ?? { line: 1, col: 1 }
    return `${this.file}:${line}:${col}`
  }

  /** Unknown names get a did-you-mean from the candidates. */
  unknown (path: ConfigPath, what: string, word: string, candidates: Iterable<string>, options: { key?: boolean, after?: string } = {}): void {
    const hint = didYouMean(word, candidates)
    this.error(path, `unknown ${what} '${word}'${hint === undefined ? '' : ` (did you mean '${hint}'?)`}${options.after ?? ''}`, options)
  }

  /** Throws every problem found, in file order (a longhaul config's own problems after the chain file's). */
  throwIfAny (): void {
    if (this.list.length === 0) return
    const rank = (d: Diagnostic): number => d.file === this.file ? 0 : 1
    throw new ConfigError([...this.list].sort((a, b) => rank(a) - rank(b) || a.line - b.line || a.col - b.col))
  }
}

export interface ParsedChain {
  readonly spec: ChainSpec
  readonly diagnostics: ChainDiagnostics
}

/** Reads and validates a chain file; throws ConfigError with every problem found. */
export async function parseChainFile (file: string): Promise<ParsedChain> {
  const text = await readYamlFile(file, 'chain file')
  const yaml = parseYaml(text, file)
  const diagnostics = new ChainDiagnostics(file, yaml.locator)
  const spec = checkSchema(chainSchema, yaml.raw, (path, message, options) => diagnostics.error(path, message, options))
  if (spec === undefined) {
    diagnostics.throwIfAny()
    throw new Error('unreachable: a chain file that failed its schema reported no problem')
  }
  checkWorkload(spec, diagnostics)
  checkHopNames(spec, diagnostics)
  return { spec, diagnostics }
}

function checkWorkload (spec: ChainSpec, d: ChainDiagnostics): void {
  const w = spec.workload
  if (w.streaming && w.maxSilence === undefined) {
    d.error(['workload', 'maxSilence'], 'missing required key \'maxSilence\': a streaming workload needs its longest gap between response bytes (thinking, tool calls)')
  }
  if (!w.streaming && w.maxSilence !== undefined) {
    d.error(['workload', 'maxSilence'], 'maxSilence applies to streaming: true; a response that comes all at the end is silent for its whole duration', { key: true })
  }
  if (w.maxSilence !== undefined && w.maxSilence > w.duration) {
    d.error(['workload', 'maxSilence'], 'maxSilence is longer than duration')
  }
  if (w.firstByte !== undefined && w.firstByte > w.duration) {
    d.error(['workload', 'firstByte'], 'firstByte is longer than duration')
  }
  if (w.upload !== undefined && uploadMs(w.upload) > w.duration) {
    d.error(['workload', 'upload'], `the upload takes ${Math.round(uploadMs(w.upload) / 1000)}s at that rate, longer than duration`)
  }
}

/** How long an upload takes at its rate. */
export function uploadMs (upload: { size: number, rate: number }): number {
  return Math.ceil(upload.size / upload.rate * 1000)
}

function checkHopNames (spec: ChainSpec, d: ChainDiagnostics): void {
  const seen = new Map<string, number>()
  ;(spec.hops ?? []).forEach((h, i) => {
    if (h.name === undefined) {
      if (h.from === undefined) d.error(['hops', i], 'missing required key \'name\' (only a from: entry may leave it out)')
      return
    }
    if (seen.has(h.name)) d.error(['hops', i, 'name'], `hop name '${h.name}' is already used by hops[${seen.get(h.name)}]`)
    seen.set(h.name, i)
  })
}

/** deploy.hop names hops of the chain (once from: entries are read, so it may name an imported hop). */
export function checkDeployHops (spec: ChainSpec, names: readonly string[], d: ChainDiagnostics): void {
  const deployHop = spec.deploy?.hop
  const listed = deployHop === undefined ? [] : typeof deployHop === 'string' ? [deployHop] : deployHop
  listed.forEach((n, i) => {
    if (!names.includes(n)) d.unknown(typeof deployHop === 'string' ? ['deploy', 'hop'] : ['deploy', 'hop', i], 'hop', n, names)
  })
}
