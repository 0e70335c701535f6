// haproxy.cfg: the `timeout` lines that act on a request, from the first frontend (or listen) and
// its default_backend, each falling back to the `defaults` section above it. Line-based, as
// HAProxy's own parser is (configuration.txt §2); times are in milliseconds unless a unit is given.
import { ImportError, type Imported, type ImportedValue } from './types.ts'
import type { Property } from '../properties.ts'

interface Section {
  readonly kind: string
  readonly name: string
  readonly line: number
  readonly timeouts: Map<string, { value: string, line: number }>
  readonly defaults: Section | null
  defaultBackend: string | null
}

/** An HAProxy time (`30s`, `5m`, `500`, `100ms`) in milliseconds; 0 means no limit. */
export function haproxyTime (text: string): number | null | undefined {
  const m = /^(\d+)(us|ms|s|m|h|d)?$/.exec(text)
  if (m === null) return undefined
  const units: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
  const ms = Math.round(Number(m[1]) * units[m[2] ?? 'ms']!)
  return ms === 0 ? null : ms
}

function sections (text: string): Section[] {
  const out: Section[] = []
  let defaults: Section | null = null
  let current: Section | null = null
  text.split('\n').forEach((raw, i) => {
    const words = raw.replace(/#.*$/, '').trim().split(/\s+/).filter((w) => w !== '')
    if (words.length === 0) return
    const [first, ...rest] = words
    if (['global', 'defaults', 'frontend', 'backend', 'listen', 'resolvers', 'peers', 'userlist', 'program', 'http-errors', 'ring', 'cache'].includes(first!)) {
      current = { kind: first!, name: rest[0] ?? '', line: i + 1, timeouts: new Map(), defaults: first === 'defaults' ? null : defaults, defaultBackend: null }
      if (first === 'defaults') defaults = current
      out.push(current)
    } else if (current !== null && first === 'timeout' && rest.length >= 2) {
      current.timeouts.set(rest[0]!, { value: rest[1]!, line: i + 1 })
    } else if (current !== null && first === 'default_backend') {
      current.defaultBackend = rest[0] ?? null
    }
  })
  return out
}

export function importHaproxy (text: string, file: string): Imported {
  const all = sections(text)
  const front = all.find((s) => s.kind === 'frontend' || s.kind === 'listen')
  if (front === undefined) throw new ImportError(file, 'no frontend or listen section')
  const back = front.kind === 'listen' ? front : all.find((s) => s.kind === 'backend' && s.name === front.defaultBackend) ?? all.filter((s) => s.kind === 'backend').at(0)
  const values: Partial<Record<Property, ImportedValue>> = {}
  /** The first of these timeouts a section (or its defaults) sets. */
  const read = (section: Section | undefined, property: Property, names: readonly string[]): void => {
    for (const name of names) {
      for (const s of [section, section?.defaults]) {
        const t = s?.timeouts.get(name)
        const ms = t === undefined ? undefined : haproxyTime(t.value)
        if (t === undefined || ms === undefined) continue
        values[property] = { ms, setting: `${s!.kind}${s!.name === '' ? '' : ` ${s!.name}`}: timeout ${name} ${t.value}`, where: `${file}:${t.line}` }
        return
      }
    }
  }
  read(back, 'streamIdleTimeout', ['server'])
  read(back, 'connectTimeout', ['connect'])
  read(front, 'serverIdleTimeout', ['http-keep-alive', 'http-request', 'client'])
  read(front, 'headersTimeout', ['http-request', 'client'])
  return { hops: [{ name: front.kind === 'listen' ? front.name || 'haproxy' : 'haproxy', preset: 'haproxy', values, ignored: [], where: `${file}:${front.line}` }], deploy: null }
}
