// `longhaul check` through the real CLI: every error class names FILE:LINE:COL of the key that
// causes it (DESIGN.md §11, CLI conventions), warnings do not fail the check, and exit codes
// tell valid (0), invalid (1) and usage errors (2) apart.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { runCli, writeConfig, ROOT } from './helpers/gateway.ts'
import { configJsonSchema } from '../src/config/json-schema.ts'

const dirs: string[] = []
after(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })))
})

/** Writes the YAML (line 1 is the first line of `text`) and runs `check --config` on it. */
async function check (text: string, ...args: string[]): Promise<{ code: number | null, stdout: string, stderr: string, file: string }> {
  const { path, dir } = await writeConfig(text)
  dirs.push(dir)
  return { ...(await runCli(['check', '--config', path, ...args])), file: path }
}

/** The stderr line that starts with `prefix`; fails with the whole stderr when there is none. */
function lineStarting (stderr: string, prefix: string): string {
  const line = stderr.split('\n').find((l) => l.startsWith(prefix))
  assert.ok(line !== undefined, `no stderr line starts with ${JSON.stringify(prefix)}; stderr:\n${stderr}`)
  return line
}

/** Asserts an invalid config: exit 1 and an error line with this exact prefix and message fragment. */
function assertError (r: { code: number | null, stderr: string, file: string }, where: string, fragment: string | RegExp): string {
  assert.equal(r.code, 1, `exit code; stderr:\n${r.stderr}`)
  const line = lineStarting(r.stderr, `${r.file}:${where}`)
  assert.ok(!line.includes(' warning: '), `expected an error, got: ${line}`)
  if (typeof fragment === 'string') assert.ok(line.includes(fragment), `${JSON.stringify(fragment)} not in: ${line}`)
  else assert.match(line, fragment)
  return line
}

/** Asserts a valid config (exit 0) with a warning line that starts with FILE:`where`. */
function assertWarning (r: { code: number | null, stderr: string, file: string }, where: string): void {
  assert.equal(r.code, 0, r.stderr)
  lineStarting(r.stderr, `${r.file}:${where}`)
}

// ---- errors: exit 1, FILE:LINE:COL path: message ----

test('an unknown key is reported at its own position with a did-you-mean', async () => {
  const r = await check(`upstreams:
  chat:
    endpoints: [http://127.0.0.1:8000]
    conectTimeout: 5s
routes:
  - name: chat
    upstream: chat
`)
  assertError(r, '4:5 upstreams.chat.conectTimeout: ', "unknown key 'conectTimeout' (did you mean 'connectTimeout'?)")
})

test('an unknown top-level key is reported at its own position', async () => {
  const r = await check(`upstreams:
  chat: { endpoints: [http://127.0.0.1:8000] }
routes:
  - name: chat
    upstream: chat
logging: { level: info }
`)
  assertError(r, '6:1 logging: ', "unknown key 'logging'")
})

test('a bare number is not a duration', async () => {
  const r = await check(`upstreams:
  chat: { endpoints: [http://127.0.0.1:8000] }
routes:
  - name: chat
    upstream: chat
    timeouts:
      request: 30
`)
  assertError(r, '7:7 routes[0].timeouts.request: ', /a bare number is not a duration.*'30s'/)
})

test('a duration with an invalid unit names the value and the units', async () => {
  const r = await check(`upstreams:
  chat:
    endpoints: [http://127.0.0.1:8000]
    connectTimeout: 5x
routes:
  - name: chat
    upstream: chat
`)
  assertError(r, '4:5 upstreams.chat.connectTimeout: ', "invalid duration '5x': write a number with a unit (ms, s, m, h)")
})

test('a size without a unit is an error, bare or quoted', async () => {
  const r = await check(`downstream:
  maxBodySize: 1024
  maxHeaderSize: "16384"
upstreams:
  chat: { endpoints: [http://127.0.0.1:8000] }
routes:
  - name: chat
    upstream: chat
`)
  assertError(r, '2:3 downstream.maxBodySize: ', 'a bare number is not a size')
  assertError(r, '3:3 downstream.maxHeaderSize: ', "invalid size '16384': write a whole number with a unit (B, KiB, MiB, GiB)")
})

test('a route naming an undefined upstream gets a did-you-mean', async () => {
  const r = await check(`upstreams:
  chat: { endpoints: [http://127.0.0.1:8000] }
routes:
  - name: chat
    upstream: caht
`)
  assertError(r, '5:5 routes[0].upstream: ', "upstream 'caht' is not defined under upstreams (did you mean 'chat'?)")
})

test('a duplicate route name points at the second one', async () => {
  const r = await check(`upstreams:
  chat: { endpoints: [http://127.0.0.1:8000] }
routes:
  - name: chat
    upstream: chat
    match: { pathPrefix: /a }
  - name: chat
    upstream: chat
    match: { pathPrefix: /b }
`)
  assertError(r, '7:5 routes[1].name: ', "route name 'chat' is already used by routes[0]")
})

test('request: none without an explicit firstByte is rejected', async () => {
  const r = await check(`upstreams:
  chat: { endpoints: [http://127.0.0.1:8000] }
routes:
  - name: chat
    upstream: chat
    timeouts:
      request: none
`)
  assertError(r, '7:7 routes[0].timeouts.request: ', 'request: none needs an explicit firstByte')
})

test('request: none with firstByte: none written on purpose is valid', async () => {
  const r = await check(`upstreams:
  chat: { endpoints: [http://127.0.0.1:8000] }
routes:
  - name: chat
    upstream: chat
    timeouts:
      request: none
      firstByte: none
`)
  assert.equal(r.code, 0, r.stderr)
})

test('a firstByte that can never fire is an error', async () => {
  const r = await check(`upstreams:
  chat: { endpoints: [http://127.0.0.1:8000] }
routes:
  - name: chat
    upstream: chat
    timeouts:
      request: 1m
      firstByte: 2m
      streamIdle: 30s
`)
  assertError(r, '8:7 routes[0].timeouts.firstByte: ', 'firstByte (2m) can never fire: request (1m) and maxClientTimeout (1m) end the request first')
})

test('a firstByte longer than request but within maxClientTimeout is only a warning', async () => {
  const r = await check(`upstreams:
  chat: { endpoints: [http://127.0.0.1:8000] }
routes:
  - name: chat
    upstream: chat
    timeouts:
      request: 1m
      firstByte: 2m
      streamIdle: 30s
      maxClientTimeout: 5m
`)
  assertWarning(r, '8:7 routes[0].timeouts.firstByte: warning: firstByte (2m) is longer than request (1m)')
})

test('a maxClientTimeout shorter than request is an error', async () => {
  const r = await check(`upstreams:
  chat: { endpoints: [http://127.0.0.1:8000] }
routes:
  - name: chat
    upstream: chat
    timeouts:
      request: 10m
      maxClientTimeout: 5m
`)
  assertError(r, '8:7 routes[0].timeouts.maxClientTimeout: ', 'maxClientTimeout (5m) is shorter than request (10m)')
})

test('a duplicate YAML key is a parse error at the repeated key', async () => {
  const r = await check(`upstreams:
  chat: { endpoints: [http://127.0.0.1:8000] }
routes:
  - name: chat
    upstream: chat
    upstream: chat
`)
  assertError(r, '6:5 routes[0].upstream: ', "YAML: key 'upstream' appears twice in the same map")
})

test('a YAML syntax error is reported with its position', async () => {
  const r = await check(`upstreams:
  chat: { endpoints: [http://127.0.0.1:8000]
routes:
  - name: chat
    upstream: chat
`)
  // The unclosed flow map on line 2 is noticed where the next block key starts.
  assertError(r, '3:1 ', /YAML: a \{ opened earlier is not closed with \}/)
})

test('a route without upstream reports the missing required key at the route', async () => {
  const r = await check(`upstreams:
  chat: { endpoints: [http://127.0.0.1:8000] }
routes:
  - name: chat
    match: { pathPrefix: /a }
`)
  assertError(r, '4:5 routes[0].upstream: ', "missing required key 'upstream'")
})

test('a config file that does not exist exits 1 and names it', async () => {
  const { dir } = await writeConfig('')
  dirs.push(dir)
  const file = join(dir, 'missing.yaml')
  const r = await runCli(['check', '--config', file])
  assertError({ ...r, file }, '1:1 ', 'cannot read config: file not found')
})

test('every error of a file is reported, not only the first', async () => {
  const r = await check(`upstreams:
  chat:
    endpoints: [http://127.0.0.1:8000]
    conectTimeout: 5s
routes:
  - name: chat
    upstream: caht
`)
  assertError(r, '4:5 upstreams.chat.conectTimeout: ', 'unknown key')
  // Schema errors stop before the cross-checks, so the undefined upstream is not reported yet.
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
})

// ---- warnings: exit 0, FILE:LINE:COL path: warning: message ----

test('a shadowed route is a warning at the route that never matches', async () => {
  const r = await check(`upstreams:
  chat: { endpoints: [http://127.0.0.1:8000] }
routes:
  - name: all
    upstream: chat
  - name: chat
    upstream: chat
    match: { pathPrefix: /v1/chat }
`)
  assertWarning(r, `6:5 routes[1]: warning: route 'chat' never matches: routes[0] ('all') takes every request it would match`)
  assert.match(r.stdout, /valid \(2 routes, 1 upstreams, 1 warnings\)/)
})

test('streamIdle not shorter than request is a warning at streamIdle', async () => {
  const r = await check(`upstreams:
  chat: { endpoints: [http://127.0.0.1:8000] }
routes:
  - name: chat
    upstream: chat
    timeouts:
      request: 1m
      streamIdle: 1m
`)
  assertWarning(r, '8:7 routes[0].timeouts.streamIdle: warning: streamIdle (1m) is not shorter than request (1m)')
})

test('a built-in streamIdle above a short request is no mistake: no warning', async () => {
  // streamIdle is written nowhere: the built-in 5m over a 2m request is not the user's doing.
  const r = await check(`upstreams:
  chat: { endpoints: [http://127.0.0.1:8000] }
defaults:
  timeouts:
    request: 2m
routes:
  - name: chat
    upstream: chat
`)
  assert.equal(r.code, 0, r.stderr)
  assert.doesNotMatch(r.stderr, /warning/)
})

test('an unused upstream is a warning at its name', async () => {
  const r = await check(`upstreams:
  chat: { endpoints: [http://127.0.0.1:8000] }
  spare: { endpoints: [http://127.0.0.1:8001] }
routes:
  - name: chat
    upstream: chat
`)
  assertWarning(r, `3:3 upstreams.spare: warning: upstream 'spare' is not used by any route`)
})

// ---- --json ----

test('--json for a valid file: valid true, the warnings with positions, nothing on stderr', async () => {
  const r = await check(`upstreams:
  chat: { endpoints: [http://127.0.0.1:8000] }
routes:
  - name: chat
    upstream: chat
    timeouts:
      request: 1m
      streamIdle: 1m
`, '--json')
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stderr, '')
  const report = JSON.parse(r.stdout)
  assert.equal(report.valid, true)
  assert.equal(report.file, r.file)
  assert.deepEqual(report.errors, [])
  assert.ok(Array.isArray(report.warnings))
  assert.equal(report.warnings.length, 1)
  assert.deepEqual(
    { ...report.warnings[0], message: undefined },
    { severity: 'warning', file: r.file, line: 8, col: 7, path: 'routes[0].timeouts.streamIdle', message: undefined }
  )
  assert.match(report.warnings[0].message, /^streamIdle \(1m\) is not shorter than request \(1m\)/)
})

test('--json for an invalid file: valid false, errors with line and col, exit 1', async () => {
  const r = await check(`upstreams:
  chat:
    endpoints: [http://127.0.0.1:8000]
    conectTimeout: 5s
routes:
  - name: chat
    upstream: chat
`, '--json')
  assert.equal(r.code, 1, r.stderr)
  const report = JSON.parse(r.stdout)
  assert.equal(report.valid, false)
  assert.equal(report.file, r.file)
  assert.equal(report.errors.length, 1)
  const [error] = report.errors
  assert.equal(error.severity, 'error')
  assert.equal(error.file, r.file)
  assert.equal(error.line, 4)
  assert.equal(error.col, 5)
  assert.equal(error.path, 'upstreams.chat.conectTimeout')
  assert.match(error.message, /did you mean 'connectTimeout'/)
  assert.ok(Array.isArray(report.warnings))
})

// ---- --explain ----

const EXPLAIN_CONFIG = `upstreams:
  chat: { endpoints: [http://127.0.0.1:8000] }
defaults:
  timeouts: { request: 20m }
routes:
  - name: chat
    upstream: chat
    timeouts:
      streamIdle: 90s
  - name: batch
    match: { pathPrefix: /batch }
    upstream: chat
    timeouts:
      firstByte: 2m
      request: 1h
      maxClientTimeout: 2h
`

test('--explain prints each timeout with its value and source: route, defaults or default', async () => {
  const r = await check(EXPLAIN_CONFIG, '--explain', 'chat')
  assert.equal(r.code, 0, r.stderr)
  const lines = r.stdout.trimEnd().split('\n')
  assert.equal(lines[0], 'route chat → upstream chat')
  assert.match(r.stdout, /^firstByte\s+= request \(20m\)\s+default\s+first_byte_timeout$/m)
  assert.match(r.stdout, /^streamIdle\s+90s\s+route\s+stream_idle_timeout$/m)
  assert.match(r.stdout, /^request\s+20m\s+defaults\s+request_timeout$/m)
  assert.match(r.stdout, /^maxClientTimeout\s+20m\s+default\s+client_deadline_exceeded$/m)

  const batch = await check(EXPLAIN_CONFIG, '--explain', 'batch')
  assert.equal(batch.code, 0, batch.stderr)
  assert.match(batch.stdout, /^route batch → upstream chat$/m)
  assert.match(batch.stdout, /^firstByte\s+2m\s+route\s+first_byte_timeout$/m)
  assert.match(batch.stdout, /^streamIdle\s+5m\s+default\s+stream_idle_timeout$/m)
  assert.match(batch.stdout, /^request\s+1h\s+route\s+request_timeout$/m)
  assert.match(batch.stdout, /^maxClientTimeout\s+2h\s+route\s+client_deadline_exceeded$/m)
})

test('--explain of an unknown route is a usage error (exit 2) listing the routes', async () => {
  const r = await check(EXPLAIN_CONFIG, '--explain', 'nope')
  assert.equal(r.code, 2, r.stderr)
  assert.match(r.stderr, /no route named 'nope' \(routes: chat, batch\)/)
})

test('an unknown CLI option is a usage error (exit 2)', async () => {
  const r = await check(EXPLAIN_CONFIG, '--bogus')
  assert.equal(r.code, 2, r.stderr)
  assert.match(r.stderr, /unknown option '--bogus'/)
})

// ---- the DESIGN.md example and the published JSON Schema ----

// DESIGN.md §3 reduced to the keys the code implements (the schema admits only those).
const DESIGN_EXAMPLE = `listen:
  - address: 0.0.0.0:8080
admin:
  address: 127.0.0.1:9901
downstream:
  headersTimeout: 30s
  bodyIdleTimeout: 60s
  idleTimeout: 620s
  sendTimeout: 60s
  maxHeaderSize: 16KiB
  maxBodySize: 100MiB
upstreams:
  chat:
    endpoints: [http://10.0.0.5:8000, http://10.0.0.6:8000]
    balance: least-request
    connectTimeout: 5s
    idleTimeout: auto
    maxConnectionsPerEndpoint: 256
defaults:
  timeouts: { request: 10m, streamIdle: 5m }
routes:
  - name: chat
    match: { pathPrefix: /v1/chat, methods: [POST], host: api.example.com }
    upstream: chat
    timeouts:
      firstByte: 2m
      streamIdle: 90s
      request: 15m
      maxClientTimeout: 30m
    sse: { errorEvent: true }
    rewrite: { stripPrefix: /v1 }
drain:
  delay: 5s
  timeout: 10m
log: { level: info }
`

test('the DESIGN.md example (implemented keys) is valid, with the one warning it deserves', async () => {
  const r = await check(DESIGN_EXAMPLE)
  assert.equal(r.code, 0, r.stderr)
  // The example's chat route allows 15m, its drain 10m: a rollout would cut the longest chats.
  lineStarting(r.stderr, `${r.file}:28:7 routes[0].timeouts.request: warning: drain.timeout (10m) is shorter than route 'chat' request (15m)`)
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  assert.match(r.stdout, /valid \(1 routes, 1 upstreams, 1 warnings\)/)
})

test('the committed longhaul.schema.json is current (run `npm run schema` after changing the schema)', async () => {
  const committed = await readFile(join(ROOT, 'longhaul.schema.json'), 'utf8')
  assert.equal(committed, configJsonSchema())
})

type JsonSchema = {
  type?: string
  properties?: Record<string, JsonSchema>
  additionalProperties?: boolean | JsonSchema
  propertyNames?: JsonSchema
  required?: string[]
  items?: JsonSchema
  pattern?: string
  enum?: unknown[]
  minItems?: number
}

/** The few JSON Schema keywords the generated schema uses: enough to see that it admits a config. */
function schemaProblems (schema: JsonSchema, value: unknown, path = '$'): string[] {
  const problems: string[] = []
  const type = Array.isArray(value) ? 'array' : Number.isInteger(value) ? 'integer' : value === null ? 'null' : typeof value
  if (schema.type !== undefined && schema.type !== type && !(schema.type === 'number' && type === 'integer')) return [`${path}: ${type} is not ${schema.type}`]
  if (schema.enum !== undefined && !schema.enum.includes(value)) problems.push(`${path}: ${String(value)} not in enum`)
  if (schema.pattern !== undefined && typeof value === 'string' && !new RegExp(schema.pattern).test(value)) problems.push(`${path}: '${value}' does not match ${schema.pattern}`)
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) problems.push(`${path}: fewer than ${schema.minItems} items`)
    if (schema.items !== undefined) value.forEach((item, i) => problems.push(...schemaProblems(schema.items!, item, `${path}[${i}]`)))
  } else if (typeof value === 'object' && value !== null) {
    for (const key of schema.required ?? []) if (!(key in value)) problems.push(`${path}: missing ${key}`)
    for (const [key, item] of Object.entries(value)) {
      if (schema.propertyNames !== undefined) problems.push(...schemaProblems(schema.propertyNames, key, `${path}.${key} (name)`))
      const sub = schema.properties?.[key] ?? schema.additionalProperties
      if (sub === false) problems.push(`${path}: unknown key ${key}`)
      else if (sub !== undefined && sub !== true) problems.push(...schemaProblems(sub, item, `${path}.${key}`))
    }
  }
  return problems
}

test('the JSON Schema is titled, describes routes and admits the DESIGN.md example', async () => {
  const { parse } = await import('yaml')
  const schema = JSON.parse(configJsonSchema()) as JsonSchema & { title: string, $schema: string }
  assert.equal(schema.title, 'longhaul configuration')
  assert.match(schema.$schema, /json-schema\.org/)
  assert.equal(schema.properties?.routes?.type, 'array')
  assert.deepEqual(schemaProblems(schema, parse(DESIGN_EXAMPLE)), [])
  // The checker is not vacuous: it sees a bare-number duration and an unknown key.
  const broken = parse(DESIGN_EXAMPLE.replace('connectTimeout: 5s', 'connectTimeout: 5\n    conectTimeout: 5s'))
  assert.deepEqual(schemaProblems(schema, broken), ['$.upstreams.chat.connectTimeout: integer is not string', '$.upstreams.chat: unknown key conectTimeout'])
})
