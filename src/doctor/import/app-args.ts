// An app server's command line (a container's command + args): gunicorn, uvicorn or hypercorn,
// and the timeout flags it was started with. Flags are read as each server's CLI defines them:
// `--flag value`, `--flag=value`, and gunicorn's short `-t`, `-k`, `-w`.
import type { Property } from '../properties.ts'
import { seconds, type ImportedValue } from './types.ts'

interface Flag {
  readonly names: readonly string[]
  readonly property: Property
  /** gunicorn's --timeout 0 means no limit. */
  readonly zeroIsNone?: boolean
}

interface Server {
  readonly preset: string
  readonly flags: readonly Flag[]
}

// gunicorn settings: https://docs.gunicorn.org/en/stable/settings.html ; uvicorn: https://www.uvicorn.org/settings/#timeouts ;
// hypercorn: https://hypercorn.readthedocs.io/en/latest/how_to_guides/configuring.html
const SERVERS: Readonly<Record<string, Server>> = {
  gunicorn: {
    preset: 'gunicorn',
    flags: [
      { names: ['--timeout', '-t'], property: 'requestTimeout', zeroIsNone: true },
      { names: ['--graceful-timeout'], property: 'drainTimeout' },
      { names: ['--keep-alive'], property: 'serverIdleTimeout' }
    ]
  },
  uvicorn: {
    preset: 'uvicorn',
    flags: [
      { names: ['--timeout-keep-alive'], property: 'serverIdleTimeout' },
      { names: ['--timeout-graceful-shutdown'], property: 'drainTimeout' }
    ]
  },
  // `node server.js`: Node's http.Server with its defaults (no flags set its timeouts).
  node: { preset: 'node-http-server', flags: [] },
  hypercorn: {
    preset: 'hypercorn',
    flags: [
      { names: ['--keep-alive'], property: 'serverIdleTimeout' },
      { names: ['--graceful-timeout'], property: 'drainTimeout' },
      { names: ['--read-timeout'], property: 'streamIdleTimeout' }
    ]
  }
}

/** gunicorn's worker classes, as the preset's modes. */
function gunicornMode (workerClass: string | undefined, threads: number): string {
  if (workerClass === undefined || workerClass === 'sync') return threads > 1 ? 'gthread' : 'sync'
  if (/uvicorn/i.test(workerClass)) return 'uvicorn-worker'
  if (workerClass === 'gthread') return 'gthread'
  return 'async'
}

export interface AppServer {
  readonly preset: string
  readonly mode?: string
  readonly values: Partial<Record<Property, ImportedValue>>
}

/**
 * The app server in a command line, or null when none is known. `args` are the words of
 * command + args; `where(i)` is the FILE:LINE of word i. A shell line (`sh -c "gunicorn …"`) is split on spaces.
 */
export function appServer (words: readonly string[], where: (i: number) => string): AppServer | null {
  const split = words.flatMap((w, i) => w.split(/\s+/).filter((x) => x !== '').map((word) => ({ word, i })))
  const at = split.findIndex(({ word }) => SERVERS[word.split('/').pop()!] !== undefined)
  if (at < 0) return null
  const name = split[at]!.word.split('/').pop()!
  const server = SERVERS[name]!
  const values: Partial<Record<Property, ImportedValue>> = {}
  const options = new Map<string, { value: string, i: number }>()
  for (let k = at + 1; k < split.length; k++) {
    const { word, i } = split[k]!
    if (!word.startsWith('-')) continue
    const eq = word.indexOf('=')
    if (eq > 0) options.set(word.slice(0, eq), { value: word.slice(eq + 1), i })
    else if (k + 1 < split.length && !split[k + 1]!.word.startsWith('-')) options.set(word, { value: split[k + 1]!.word, i: split[k + 1]!.i })
  }
  for (const flag of server.flags) {
    const name = flag.names.find((n) => options.has(n))
    if (name === undefined) continue
    const { value, i } = options.get(name)!
    const ms = seconds(value, flag.zeroIsNone)
    if (ms !== undefined) values[flag.property] = { ms, setting: `${name} ${value}`, where: where(i) }
  }
  if (server.preset !== 'gunicorn') return { preset: server.preset, values }
  const workerClass = (options.get('--worker-class') ?? options.get('-k'))?.value
  const threads = Number((options.get('--threads') ?? { value: '1' }).value)
  return { preset: server.preset, mode: gunicornMode(workerClass, threads), values }
}
