// The access line is written without pino's serialiser (observe/log.ts): it must stay the very
// bytes pino writes for the same record, whatever the record holds.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import pino from 'pino'
import { GatewayLog, type AccessRecord } from '../src/observe/log.ts'

/** A destination that keeps what it is given. */
function capture (): { lines: string[], write (line: string): void } {
  const lines: string[] = []
  return { lines, write: (line: string) => { lines.push(line) } }
}

/** pino's own line for the record, as GatewayLog's logger is set up (pid base, ISO time). */
function pinoLine (record: AccessRecord): string {
  const out = capture()
  pino({ level: 'info', base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, out).info(record, 'access')
  return out.lines[0]!
}

const withoutTime = (line: string): string => line.replace(/,"time":"[^"]+"/, ',"time":"T"')

const base: AccessRecord = {
  requestId: '7c1f0d3e-8a41-4b5e-9a0e-3f7f2b6f1c22',
  method: 'GET',
  host: null,
  path: '/v1/chat/completions?stream=true',
  protocol: 'HTTP/1.1',
  clientIp: '127.0.0.1',
  route: null,
  upstream: null,
  endpoint: null,
  status: 504,
  outcome: 'first_byte_timeout',
  attempts: 0,
  bytesIn: 0,
  bytesOut: 0,
  durationMs: 2001,
  firstByteMs: null
}

const records: Array<[string, AccessRecord]> = [
  ['nulls and numbers', base],
  ['every optional field', { ...base, host: 'api.example', route: 'chat', upstream: 'llm', endpoint: 'http://10.0.0.7:8000', limitMs: 2000, clientRetryCount: 2, upgrade: 'websocket' }],
  ['strings that need escaping', { ...base, path: '/a"b\\c\u0001\u001f\t\n/é/日本/\ud83d\ude00/\ud800', host: 'x'.repeat(60) + '"' }],
  ['a long path (pino stringifies strings over 42 characters another way)', { ...base, path: `/${'segment/'.repeat(500)}` }]
]

for (const [name, record] of records) {
  test(`access line: the bytes pino writes, ${name}`, () => {
    const out = capture()
    const log = new GatewayLog('info', out)
    log.access(record)
    log.flushBatch()
    assert.equal(out.lines.length, 1)
    const line = out.lines[0]!
    assert.match(line, /^\{"level":30,"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","pid":\d+,"requestId":/)
    assert.ok(line.endsWith(',"msg":"access"}\n'))
    assert.equal(withoutTime(line), withoutTime(pinoLine(record)))
    assert.deepEqual(JSON.parse(line).path, record.path)
  })
}

test('access line: not written above level info, written again once the level comes back (reload)', () => {
  const out = capture()
  const log = new GatewayLog('warn', out)
  log.access(base)
  log.flushBatch()
  assert.equal(out.lines.length, 0)
  log.level = 'debug'
  log.access(base)
  log.level = 'error'
  log.access(base)
  log.flushBatch()
  assert.equal(out.lines.length, 1)
  assert.equal(JSON.parse(out.lines[0]!).outcome, 'first_byte_timeout')
})

const turnEnds = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

test('access lines: the lines of one turn of the event loop go out in one write at its end, in order', async () => {
  const out = capture()
  const log = new GatewayLog('info', out)
  for (const requestId of ['a', 'b', 'c']) log.access({ ...base, requestId })
  assert.equal(out.lines.length, 0)
  await turnEnds()
  assert.equal(out.lines.length, 1)
  assert.deepEqual(out.lines[0]!.split('\n').filter(Boolean).map((line) => JSON.parse(line).requestId), ['a', 'b', 'c'])
  log.access({ ...base, requestId: 'd' })
  await log.flush()
  assert.equal(JSON.parse(out.lines[1]!).requestId, 'd')
})

test('access lines: on a shared stdout no write holds more than PIPE_BUF bytes, however many bytes a character takes', async () => {
  const out = capture()
  const log = new GatewayLog('info', out, { sharedStdout: true })
  const ids: string[] = []
  for (let i = 0; i < 200; i++) {
    ids.push(String(i))
    log.access({ ...base, requestId: String(i), path: `/${'日本\ud83d\ude00'.repeat(i % 40)}` })
  }
  await turnEnds()
  assert.ok(out.lines.length > 1)
  for (const write of out.lines) {
    assert.ok(Buffer.byteLength(write) <= 4096, `a write of ${Buffer.byteLength(write)} bytes`)
    assert.ok(write.endsWith('\n'))
  }
  assert.deepEqual(out.lines.join('').split('\n').filter(Boolean).map((line) => JSON.parse(line).requestId), ids)
})

test('access lines: a process that exits in the turn that logged them still writes them', async () => {
  const { execFileSync } = await import('node:child_process')
  const logModule = new URL('../src/observe/log.ts', import.meta.url).href
  const script = `import { GatewayLog } from ${JSON.stringify(logModule)}
const log = new GatewayLog('info')
log.access({ requestId: 'last-words', method: 'GET', host: null, path: '/', protocol: 'HTTP/1.1', clientIp: '', route: null, upstream: null, endpoint: null, status: 200, outcome: 'ok', attempts: 1, bytesIn: 0, bytesOut: 0, durationMs: 1, firstByteMs: 1 })
process.exit(3)`
  let stdout = ''
  try {
    execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })
  } catch (err) {
    const failed = err as { status: number, stdout: string }
    assert.equal(failed.status, 3)
    stdout = failed.stdout
  }
  assert.equal(JSON.parse(stdout).requestId, 'last-words')
})

test('flush() ends once every line is written: lines logged before it reach stdout whole and in order, however soon the process exits', async () => {
  const { execFile } = await import('node:child_process')
  const logModule = new URL('../src/observe/log.ts', import.meta.url).href
  // A line larger than a pipe holds is still being written (by Node's thread pool) when the
  // lines after it are logged; exit comes right after flush().
  const script = `import { GatewayLog } from ${JSON.stringify(logModule)}
const log = new GatewayLog('info')
log.error('first', new Error('x'.repeat(300000)))
for (let code = 0; code < 50; code++) log.exited(code)
await log.flush()
process.exit(0)`
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (err, out) => err === null ? resolve(out) : reject(err))
  })
  const lines = stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { msg: string, code?: number, err?: { message: string } })
  assert.equal(lines.length, 51)
  assert.equal(lines[0]!.msg, 'first')
  assert.equal(lines[0]!.err!.message.length, 300000)
  assert.deepEqual(lines.slice(1).map((line) => line.code), Array.from({ length: 50 }, (_, code) => code))
})
