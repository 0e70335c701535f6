// The README's default values are the schema's (issue 10): every row of the config key table that
// names a default, and the default column of the timeout table, are read back from
// config/schema.ts, so a default changed in one place and not the other fails here.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { configSchema } from '../src/config/schema.ts'
import { AUTO_IDLE_MS, ROUTE_TIMEOUTS, ROUTE_TIMEOUT_NAMES, type RouteTimeoutName } from '../src/config/builtins.ts'
import { OUTCOMES } from '../src/gateway/outcome.ts'
import { ROOT } from './helpers/gateway.ts'

const README = readFileSync(join(ROOT, 'README.md'), 'utf8')

/** Table rows as cells, for the table whose header row starts with `| first |`. */
function tableRows (first: string): string[][] {
  const lines = README.split('\n')
  const start = lines.findIndex((line) => line.startsWith(`| ${first} |`))
  assert.ok(start >= 0, `README: a table headed | ${first} |`)
  const rows: string[][] = []
  for (let i = start + 2; i < lines.length && lines[i]!.startsWith('|'); i++) {
    rows.push(lines[i]!.slice(1, -1).split(' | ').map((cell) => cell.trim()))
  }
  return rows
}

type Def = { type: string, innerType?: unknown, in?: unknown, shape?: Record<string, unknown>, element?: unknown, valueType?: unknown, defaultValue?: unknown }
const defOf = (node: unknown): Def | undefined => (node as { _zod?: { def: Def } } | undefined)?._zod?.def

/**
 * The schema's default at a README key such as `upstreams.NAME.connectTimeout` or
 * `routes[].retry.attempts`: the key's own prefault, else what an enclosing one gives it
 * (`listen` defaults to one listener on 0.0.0.0:8080), else undefined.
 */
function schemaDefault (key: string): unknown {
  let node: unknown = configSchema
  let found: unknown
  /** The part of an enclosing default that reaches this key. */
  let carried: unknown
  const into = (value: unknown, name: string | 0): unknown => value !== null && typeof value === 'object' ? (value as Record<string | number, unknown>)[name] : undefined
  const unwrap = (): void => {
    for (let def = defOf(node); def !== undefined; def = defOf(node)) {
      if (def.type === 'prefault' || def.type === 'default') found = def.defaultValue
      if (['optional', 'default', 'prefault', 'nullable', 'readonly'].includes(def.type)) node = def.innerType
      else if (def.type === 'pipe') node = def.in
      else return
    }
  }
  for (const segment of key.split('.')) {
    found = undefined
    unwrap()
    carried = found ?? carried
    const def = defOf(node)
    const name = segment.replace(/\[\]$/, '')
    if (def?.type === 'record') node = def.valueType
    else if (def?.type === 'object') node = def.shape![name]
    else return undefined
    carried = into(carried, name)
    if (segment.endsWith('[]')) {
      found = undefined
      unwrap()
      carried = into(found ?? carried, 0)
      node = defOf(node)?.element
    }
  }
  found = undefined
  unwrap()
  return found ?? carried
}

function written (value: unknown): string {
  return Array.isArray(value) ? `[${value.join(', ')}]` : String(value)
}

test('the config key table gives the schema\'s defaults', () => {
  let checked = 0
  for (const [keyCell, defaultCell] of tableRows('key')) {
    const key = /^`([^`]+)`$/.exec(keyCell!)?.[1]
    const value = /^`([^`]+)`$/.exec(defaultCell!)?.[1]
    if (key === undefined || value === undefined || key.includes('timeouts.')) continue
    const want = schemaDefault(key)
    if (want !== null && typeof want === 'object' && !Array.isArray(want)) continue // a block: its keys have their own rows
    assert.notEqual(want, undefined, `README says ${key} defaults to ${value}; the schema has no default there`)
    assert.equal(value, written(want), `README default of ${key}`)
    checked++
  }
  assert.ok(checked >= 25, `only ${checked} rows checked: did the table's layout change?`)
})

function readmeDefault (name: RouteTimeoutName, quote: string): string {
  const value: string = ROUTE_TIMEOUTS[name].default
  return value === 'request' || value === 'streamIdle' ? `= ${quote}${value}${quote}` : `${quote}${value}${quote}`
}

test('route timeouts: the key table and the timeout table give the defaults of the one table in config/schema.ts', () => {
  const keys = new Map(tableRows('key').map((row) => [row[0]!, row[1]!]))
  const limits = new Map(tableRows('limit').map((row) => [row[0]!, row]))
  for (const name of ROUTE_TIMEOUT_NAMES) {
    assert.equal(keys.get(`\`routes[].timeouts.${name}\``), readmeDefault(name, '`'), `key table: routes[].timeouts.${name}`)
    assert.ok(ROUTE_TIMEOUTS[name].outcome in OUTCOMES, `${name}: ${ROUTE_TIMEOUTS[name].outcome} is an outcome`)
    const row = limits.get(`\`${name}\``)
    if (row === undefined) continue // maxClientTimeout is no limit of its own: it widens `request`
    assert.equal(row.at(-1), readmeDefault(name, ''), `timeout table: ${name}`)
    assert.match(row.at(-2)!, new RegExp(`^\`${ROUTE_TIMEOUTS[name].outcome}\``), `timeout table: ${name}'s outcome`)
  }
})

test('idleTimeout: auto falls back to the schema\'s value when the server sends no hint', () => {
  const row = tableRows('key').find((cells) => cells[0] === '`upstreams.NAME.idleTimeout`')
  assert.ok(row !== undefined)
  assert.match(row[2]!, new RegExp(`${AUTO_IDLE_MS / 1000} s without a hint`))
})

test('schemaDefault reads the schema (a wrong key has no default, a known one has)', () => {
  assert.equal(schemaDefault('downstream.headersTimeout'), '30s')
  assert.equal(schemaDefault('routes[].retry.attempts'), 2)
  assert.equal(schemaDefault('upstreams.NAME.dns.refresh'), '5s')
  assert.equal(schemaDefault('downstream.noSuchKey'), undefined)
  assert.equal(schemaDefault('upstreams.NAME.endpoints'), undefined)
})
