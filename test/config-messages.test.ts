// What a config mistake looks like: plain words, the key path, a "did you mean" wherever a close
// name exists (keys, fixed values, retry conditions), YAML syntax errors located in the config,
// and every problem in the order a reader meets it in the file.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfigText } from '../src/config/load.ts'
import { ConfigError, formatDiagnostic } from '../src/config/diagnostics.ts'
import { runCli, writeConfig } from './helpers/gateway.ts'

/** The formatted errors of an invalid config text. */
function errorsOf (text: string): string[] {
  try {
    parseConfigText(text, 'f.yaml')
  } catch (err) {
    if (err instanceof ConfigError) return err.diagnostics.map(formatDiagnostic)
    throw err
  }
  return assert.fail('the config was accepted')
}

const UPSTREAM = 'upstreams:\n  chat: { endpoints: [http://127.0.0.1:8000] }\n'
const ROUTE = 'routes:\n  - { name: chat, upstream: chat }\n'

test('a value outside a fixed set names the set, with a did-you-mean', () => {
  assert.deepEqual(errorsOf(`upstreams:
  chat:
    endpoints: [http://127.0.0.1:8000]
    balance: least-requests
${ROUTE}log: { level: warning }
listen: [{ address: 127.0.0.1:0, protocol: h2 }]
`), [
    "f.yaml:4:5 upstreams.chat.balance: unknown value 'least-requests' (did you mean 'least-request'?): expected one of 'least-request', 'round-robin'",
    "f.yaml:7:8 log.level: unknown value 'warning' (did you mean 'warn'?): expected one of 'trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'",
    "f.yaml:8:34 listen[0].protocol: unknown value 'h2' (did you mean 'h2c'?): expected 'h2c'"
  ])
  // Nothing close: the set alone.
  assert.deepEqual(errorsOf(`${UPSTREAM}${ROUTE}log: { level: loud }\n`), [
    "f.yaml:5:8 log.level: unknown value 'loud': expected one of 'trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'"
  ])
})

test('a retry condition with a typo gets a did-you-mean', () => {
  assert.deepEqual(errorsOf(`${UPSTREAM}routes:
  - name: chat
    upstream: chat
    retry: { on: [connect-failur, "503", 5030] }
`), [
    'f.yaml:6:19 routes[0].retry.on[0]: unknown retry condition "connect-failur" (did you mean \'connect-failure\'?): write connect-failure, reset-before-response, error-event, first-event-timeout or a status code such as "503"',
    'f.yaml:6:42 routes[0].retry.on[2]: unknown retry condition 5030: write connect-failure, reset-before-response, error-event, first-event-timeout or a status code such as "503"'
  ])
})

test('YAML syntax errors: plain words, line and column, the key they are under, one per line', () => {
  assert.deepEqual(errorsOf(`upstreams:
  chat:
    endpoints:
      - http://127.0.0.1:8000
     - http://127.0.0.1:8001
${ROUTE}`), ["f.yaml:5:1 upstreams.chat: YAML: this line is not indented like the lines around it (a list item or a key out of line), or a key lacks its ':'"])
  assert.deepEqual(errorsOf(`${UPSTREAM}routes:\n  - name: chat\n\tupstream: chat\n`), ['f.yaml:5:1 YAML: a tab in the indentation: YAML indents with spaces only'])
  assert.deepEqual(errorsOf(`${UPSTREAM}${ROUTE}log: { level: "info }\n`), ['f.yaml:5:15 log.level: YAML: a string opened with " is never closed'])
  assert.deepEqual(errorsOf(`upstreams:
  chat: { endpoints: [http://127.0.0.1:8000] }
  chat: { endpoints: [http://127.0.0.1:8001] }
${ROUTE}`), ["f.yaml:3:3 upstreams.chat: YAML: key 'chat' appears twice in the same map: the second would silently replace the first"])
})

test('check prints every error in file order', async () => {
  const { path } = await writeConfig(`upstreams:
  chat:
    endpoints: [http://127.0.0.1:8000]
    conectTimeout: 5s
routes:
  - name: chat
    upstream: chat
    timeouts: { request: 10 }
log: { level: loud }
listen: [{ adress: 127.0.0.1:0 }]
`)
  const r = await runCli(['check', '--config', path])
  assert.equal(r.code, 1)
  const positions = r.stderr.trim().split('\n').map((line) => line.slice(path.length + 1).split(' ')[0])
  assert.deepEqual(positions, ['4:5', '8:17', '9:8', '10:10', '10:12'], r.stderr)
})
