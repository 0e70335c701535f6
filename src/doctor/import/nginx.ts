// nginx.conf, resolved for one request path: directives inherit http → server → location, and
// `include` is followed (globs too). No maintained JavaScript parser of nginx's configuration
// language exists (crossplane, the reference one, is Python), so this is a small tokenizer for its
// documented syntax: words, quoted strings, `;`, blocks in braces, `#` comments.
import { readFile, glob } from 'node:fs/promises'
import { dirname, isAbsolute, join } from 'node:path'
import { ImportError, type IgnoredSetting, type Imported, type ImportedValue } from './types.ts'
import type { Property } from '../properties.ts'

export interface Directive {
  readonly name: string
  readonly args: readonly string[]
  readonly file: string
  readonly line: number
  readonly block: readonly Directive[] | null
}

const NGINX_UPSTREAM = 'https://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive ("For HTTP, the proxy_http_version directive should be set to 1.1 and the Connection header field should be cleared")'

function tokens (text: string, file: string): Array<{ word: string, line: number, quoted: boolean }> {
  const out: Array<{ word: string, line: number, quoted: boolean }> = []
  let line = 1
  let i = 0
  while (i < text.length) {
    const c = text[i]!
    if (c === '\n') { line++; i++ } else if (/\s/.test(c)) i++
    else if (c === '#') { while (i < text.length && text[i] !== '\n') i++ } else if (c === '{' || c === '}' || c === ';') { out.push({ word: c, line, quoted: false }); i++ } else if (c === '"' || c === '\'') {
      const start = line
      let j = i + 1
      let word = ''
      while (j < text.length && text[j] !== c) {
        if (text[j] === '\\' && j + 1 < text.length) j++
        if (text[j] === '\n') line++
        word += text[j]
        j++
      }
      if (j >= text.length) throw new ImportError(`${file}:${start}`, 'unterminated quoted string')
      out.push({ word, line: start, quoted: true })
      i = j + 1
    } else {
      let j = i
      while (j < text.length && !/[\s;{}#]/.test(text[j]!)) j++
      out.push({ word: text.slice(i, j), line, quoted: false })
      i = j
    }
  }
  return out
}

/** The directives of a file, `include`s expanded in place. */
export async function parseNginx (file: string, root = dirname(file), seen = new Set<string>()): Promise<Directive[]> {
  if (seen.has(file)) throw new ImportError(file, 'include cycle')
  seen.add(file)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new ImportError(file, `cannot read: ${(err as Error).message}`)
  }
  const list = tokens(text, file)
  let k = 0
  const block = async (depth: number): Promise<Directive[]> => {
    const out: Directive[] = []
    while (k < list.length) {
      const t = list[k]!
      if (t.word === '}' && !t.quoted) {
        if (depth === 0) throw new ImportError(`${file}:${t.line}`, 'unexpected "}"')
        k++
        return out
      }
      const words: string[] = []
      const line = t.line
      while (k < list.length && (list[k]!.quoted || !['{', ';', '}'].includes(list[k]!.word))) words.push(list[k++]!.word)
      const end = list[k]
      if (end === undefined || end.word === '}') throw new ImportError(`${file}:${line}`, `directive "${words[0] ?? ''}" has no ending ";"`)
      k++
      const [name = '', ...args] = words
      if (end.word === '{') {
        out.push({ name, args, file, line, block: await block(depth + 1) })
      } else if (name === 'include') {
        const pattern = isAbsolute(args[0] ?? '') ? args[0]! : join(root, args[0] ?? '')
        const files: string[] = []
        for await (const f of glob(pattern)) files.push(f)
        if (files.length === 0 && !/[*?[]/.test(pattern)) throw new ImportError(`${file}:${line}`, `include ${args[0]}: file not found`)
        for (const f of files.sort()) out.push(...await parseNginx(f, root, new Set(seen)))
      } else {
        out.push({ name, args, file, line, block: null })
      }
    }
    if (depth > 0) throw new ImportError(`${file}:${list[list.length - 1]?.line ?? 1}`, 'unexpected end of file: a "}" is missing')
    return out
  }
  return block(0)
}

/** An nginx time (`60`, `300s`, `5m`, `1m30s`, `500ms`) in milliseconds. */
export function nginxTime (text: string): number | undefined {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, M: 2_592_000_000, y: 31_536_000_000 }
  if (!/^(\d+(ms|s|m|h|d|w|M|y)?)+$/.test(text)) return undefined
  let ms = 0
  for (const m of text.matchAll(/(\d+)(ms|s|m|h|d|w|M|y)?/g)) ms += Number(m[1]) * units[m[2] ?? 's']!
  return ms
}

/** The location block a request path takes (exact `=`, then the longest prefix; regex locations are not evaluated). */
function pickLocation (server: readonly Directive[], path: string): Directive | null {
  const locations = server.filter((d) => d.name === 'location' && d.block !== null)
  const exact = locations.find((l) => l.args[0] === '=' && l.args[1] === path)
  if (exact !== undefined) return exact
  let best: Directive | null = null
  let bestLength = -1
  for (const l of locations) {
    const prefix = l.args.length === 1 ? l.args[0]! : l.args[0] === '^~' ? l.args[1]! : null
    if (prefix !== null && path.startsWith(prefix) && prefix.length > bestLength) { best = l; bestLength = prefix.length }
  }
  return best
}

const DIRECTIVES: Readonly<Record<string, Property>> = {
  proxy_read_timeout: 'streamIdleTimeout',
  proxy_connect_timeout: 'connectTimeout',
  keepalive_timeout: 'serverIdleTimeout',
  client_header_timeout: 'headersTimeout'
}

/** nginx as one hop: the effective timeouts for the request path, each with its FILE:LINE. */
export async function importNginx (file: string, options: { path?: string, name?: string } = {}): Promise<Imported> {
  const top = await parseNginx(file)
  const http = top.find((d) => d.name === 'http' && d.block !== null)?.block ?? top
  const servers = http.filter((d) => d.name === 'server' && d.block !== null)
  const server = servers.find((s) => s.block!.some((d) => d.name === 'listen' && d.args.includes('default_server'))) ?? servers[0]
  if (server === undefined) throw new ImportError(file, 'no server block')
  const path = options.path ?? '/'
  const location = pickLocation(server.block!, path)
  const scopes = [location?.block ?? [], server.block!, http]
  const effective = (name: string): Directive | undefined => {
    for (const scope of scopes) {
      const found = scope.filter((d) => d.name === name).pop()
      if (found !== undefined) return found
    }
    return undefined
  }
  const values: Partial<Record<Property, ImportedValue>> = {}
  const where = (d: Directive): string => `${d.file}:${d.line}`
  for (const [name, property] of Object.entries(DIRECTIVES)) {
    const d = effective(name)
    const ms = d === undefined ? undefined : nginxTime(d.args[0] ?? '')
    if (d !== undefined && ms !== undefined) values[property] = { ms, setting: `${name} ${d.args.join(' ')}${location === null || !(location.block ?? []).includes(d) ? '' : ` (location ${location.args.join(' ')})`}`, where: where(d) }
  }
  const ignored: IgnoredSetting[] = []
  const pass = effective('proxy_pass')?.args[0]
  const upstreamName = pass === undefined ? undefined : /^https?:\/\/([^/:]+)/.exec(pass)?.[1]
  const upstream = http.find((d) => d.name === 'upstream' && d.args[0] === upstreamName && d.block !== null)
  const keepalive = upstream?.block!.find((d) => d.name === 'keepalive')
  if (upstream !== undefined && keepalive !== undefined) {
    const timeout = upstream.block!.find((d) => d.name === 'keepalive_timeout')
    const ms = timeout === undefined ? 60_000 : nginxTime(timeout.args[0] ?? '') ?? 60_000
    const version = effective('proxy_http_version')?.args[0]
    if (version === '1.1') {
      values.clientIdleTimeout = { ms, setting: `upstream ${upstream.args[0]} { keepalive ${keepalive.args[0]}; keepalive_timeout ${timeout?.args[0] ?? '60s (default)'} }`, where: where(timeout ?? keepalive) }
    } else {
      ignored.push({ setting: `upstream ${upstream.args[0]} { keepalive ${keepalive.args[0]} }`, where: where(keepalive), meant: 'clientIdleTimeout', written: ms, what: 'without proxy_http_version 1.1, nginx speaks HTTP/1.0 to the upstream and closes every connection: the pool stays empty', works: 'proxy_http_version 1.1; and proxy_set_header Connection ""; in the location (then mind the app\'s own keep-alive)', source: NGINX_UPSTREAM, confirmed: true })
    }
  }
  const name = options.name ?? 'nginx'
  return { hops: [{ name, preset: 'nginx', values, ignored, where: location === null ? where(server) : where(location) }], deploy: null }
}
