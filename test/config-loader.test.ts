// The config loader process: `serve` gets its config read, parsed and validated by a short-lived
// child process, so the YAML parser and the schema validator never load into a serving process.
// Its answers are the in-process loader's, errors included; a loader that hangs is killed at its bound,
// none outlives its gateway, and reloads take turns.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, open, readFile, readdir, rename, rm, symlink, unlink, writeFile, type FileHandle } from 'node:fs/promises'
import { constants as fsConstants, existsSync, readFileSync } from 'node:fs'
import { constants as osConstants, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { loadConfigApart } from '../src/config/loader-process.ts'
import { loadConfigFile, parseConfigText } from '../src/config/load.ts'
import { ConfigError } from '../src/config/diagnostics.ts'
import { startDemoUpstream, type DemoUpstream } from '../src/demo/upstream.ts'
import { CLI, ROOT, startGateway, writeConfig, type RunningGateway } from './helpers/gateway.ts'

const dirs: string[] = []
const running: RunningGateway[] = []
const demos: DemoUpstream[] = []
const spawned: ChildProcess[] = []
after(async () => {
  // SIGTERM: the primary of a pool drains its workers with it (SIGKILL would leave them behind).
  await Promise.all(running.map((g) => g.stop('SIGTERM')))
  for (const child of spawned) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  await Promise.all(demos.map((d) => d.close()))
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })))
})

async function configFile (text: string): Promise<string> {
  const { path, dir } = await writeConfig(text)
  dirs.push(dir)
  return path
}

const VALID = `
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams:
  llm: { endpoints: [http://127.0.0.1:9] }
routes:
  - name: chat
    upstream: llm
    timeouts: { streamIdle: 45s }
    retry: { on: ["502", "503"] }
`

/** The load's own instant differs between two loads; everything else must not. */
function withoutInstant<T extends { config: { source: { loadedAt: string } } }> (loaded: T): T {
  return { ...loaded, config: { ...loaded.config, source: { ...loaded.config.source, loadedAt: '' } } }
}

/** The PIDs of the children of `parent` (this process by default) still alive, loaders only if asked. */
async function childPids (parent = process.pid, { loadersOnly = false } = {}): Promise<number[]> {
  const pids: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8')
      // Field 4, after the parenthesised command name (which may hold spaces).
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid !== parent) continue
      if (loadersOnly && !(await readFile(`/proc/${entry}/cmdline`, 'utf8')).includes('loader-child.ts')) continue
      pids.push(Number(entry))
    } catch { /* gone meanwhile */ }
  }
  return pids
}

/** Polls (every 20 ms, up to 10 s) until `parent` has exactly `n` loader children; resolves with their PIDs. */
async function loadersOf (parent: number, n: number): Promise<number[]> {
  const until = Date.now() + 10_000
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    const pids = await childPids(parent, { loadersOnly: true })
    if (pids.length === n) return pids
    if (Date.now() > until) throw new Error(`process ${parent} has ${pids.length} config loaders, not ${n}`)
  }
}

/** Polls (every 5 ms, up to 5 s) until the kernel has delivered `signal` to `pid` (no longer pending). */
async function signalTaken (pid: number, signal: 'SIGHUP'): Promise<void> {
  const bit = 1n << BigInt(osConstants.signals[signal] - 1)
  const until = Date.now() + 5000
  for (;;) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    const pending = [...status.matchAll(/^(SigPnd|ShdPnd):\s*([0-9a-f]+)$/gm)].some((m) => (BigInt(`0x${m[2]!}`) & bit) !== 0n)
    if (!pending) return
    if (Date.now() > until) throw new Error(`${signal} still pending for process ${pid}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** Polls (every 5 ms, up to 10 s) until a reader has the FIFO open; resolves with its write end. */
async function writerOf (fifo: string): Promise<FileHandle> {
  const until = Date.now() + 10_000
  for (;;) {
    try {
      return await open(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENXIO' || Date.now() > until) throw err
    }
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

const hashOf = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 12)

test('the loader process answers with the config an in-process load gives, Sets included', async () => {
  const file = await configFile(VALID)
  const apart = await loadConfigApart({ file })
  const here = await loadConfigFile(file)
  assert.deepEqual(withoutInstant(apart), withoutInstant(here))
  assert.deepEqual([...apart.config.routes[0]!.retry.onStatus], [502, 503])
  assert.equal(apart.config.routes[0]!.timeouts.streamIdle.ms, 45_000)
})

test('config text (the embedded demo) is loaded apart as parseConfigText loads it', async () => {
  const text = VALID
  const apart = await loadConfigApart({ text, name: '<embedded demo>' })
  assert.deepEqual(withoutInstant(apart), withoutInstant(parseConfigText(text, '<embedded demo>')))
  assert.equal(apart.config.source.path, '<embedded demo>')
})

test('an invalid file: ConfigError with the diagnostics an in-process load reports, positions included', async () => {
  const file = await configFile(`${VALID}    retries: 3\n`)
  const here = await loadConfigFile(file).then(() => null, (err: unknown) => err)
  assert.ok(here instanceof ConfigError)
  await assert.rejects(loadConfigApart({ file }), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err))
    assert.deepEqual(err.diagnostics, here.diagnostics)
    assert.equal(err.message, here.message)
    assert.match(err.message, /longhaul\.yaml:11:5 routes\[0\]\.retries: /)
    return true
  })
})

test('a file that is not there: ConfigError naming it, as in process', async () => {
  const file = join(tmpdir(), `longhaul-no-such-${process.pid}.yaml`)
  await assert.rejects(loadConfigApart({ file }), (err: unknown) => {
    assert.ok(err instanceof ConfigError)
    assert.equal(err.message, `${file}:1:1 cannot read config: file not found`)
    return true
  })
})

test('a loader that gives no answer (a config FIFO nobody writes) is killed at its bound, and says so', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'longhaul-fifo-'))
  dirs.push(dir)
  const fifo = join(dir, 'longhaul.yaml')
  execFileSync('mkfifo', [fifo])
  const before = await childPids()
  const startedAt = performance.now()
  await assert.rejects(loadConfigApart({ file: fifo }, { timeoutMs: 1000 }), { message: 'the config loader gave no answer within 1 s' })
  const elapsed = performance.now() - startedAt
  assert.ok(elapsed >= 1000 && elapsed < 5000, `rejected after ${Math.round(elapsed)} ms`)
  // The loader is gone, not left blocked on the FIFO.
  const deadline = Date.now() + 2000
  let left = (await childPids()).filter((pid) => !before.includes(pid))
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setImmediate(resolve))
    left = (await childPids()).filter((pid) => !before.includes(pid))
  }
  assert.deepEqual(left, [])
})

/** Starts `serve` with every module each of its processes loads written to a file; returns the file's lines once serving. */
async function modulesOfServe (config: string): Promise<{ gw: RunningGateway, modules: () => Array<{ pid: number, url: string }> }> {
  const dir = await mkdtemp(join(tmpdir(), 'longhaul-modules-'))
  dirs.push(dir)
  const out = join(dir, 'modules.txt')
  const hook = `${pathToFileURL(join(ROOT, 'test', 'helpers', 'loaded-modules.ts')).href}?out=${encodeURIComponent(out)}`
  const gw = await startGateway(config, { nodeArgs: ['--import', hook], startTimeoutMs: 20_000 })
  running.push(gw)
  const modules = (): Array<{ pid: number, url: string }> => readFileSync(out, 'utf8').trim().split('\n').map((line) => {
    const [pid, url] = line.split(' ')
    return { pid: Number(pid), url: url! }
  })
  return { gw, modules }
}

for (const workers of [1, 2]) {
  test(`serve (workers: ${workers}) never loads the YAML parser or the schema validator; its config came from the loader`, async () => {
    const demo = await startDemoUpstream()
    demos.push(demo)
    const { gw, modules } = await modulesOfServe(`
listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
workers: ${workers}
upstreams: { demo: { endpoints: [${demo.url}] } }
routes: [{ name: all, upstream: demo, timeouts: { streamIdle: 45s } }]
`)
    const res = await fetch(`${gw.url}/sse?events=2&interval-ms=10`)
    assert.equal(res.status, 200)
    assert.match(await res.text(), /data:/)
    const config = await (await fetch(`${gw.adminUrl}/config`)).json() as { routes: Array<{ timeouts: { streamIdle: { ms: number } } }> }
    assert.equal(config.routes[0]!.timeouts.streamIdle.ms, 45_000)
    const loaded = modules()
    const pids = new Set(loaded.map((m) => m.pid))
    // The primary and, with workers: 2, both workers: each one traced (the trace works: undici is there).
    assert.equal(pids.size, workers === 1 ? 1 : 3, `${pids.size} processes traced`)
    for (const pid of pids) {
      const urls = loaded.filter((m) => m.pid === pid).map((m) => m.url)
      assert.ok(urls.some((u) => u.includes('/node_modules/undici/')), `process ${pid} traced`)
      const heavy = urls.filter((u) => /\/node_modules\/(zod|yaml)\/|\/src\/config\/(load|schema|yaml|resolve|locate|messages)\.ts$/.test(u))
      assert.deepEqual(heavy, [], `process ${pid} loaded the config loader's modules`)
    }
  })
}

/** Runs `serve` to its end; kills it (and fails) if it has not ended within 20 s. */
async function serveToEnd (args: string[], whileRunning?: (child: ChildProcess) => Promise<void>): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  spawned.push(child)
  let stderr = ''
  let stdout = ''
  child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text })
  child.stdout.setEncoding('utf8').on('data', (text: string) => { stdout += text })
  const ended = new Promise<number | null>((resolve) => child.once('exit', resolve))
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  await whileRunning?.(child)
  const code = await ended
  clearTimeout(timer)
  assert.notEqual(child.signalCode, 'SIGKILL', `serve did not end within 20 s; stderr: ${stderr}`)
  return { code, stdout, stderr }
}

test('serve with an invalid config: the loader\'s diagnostics on stderr, exit 1, nothing listening', async () => {
  const file = await configFile(`${VALID}    retries: 3\n`)
  const { code, stdout, stderr } = await serveToEnd(['--config', file])
  assert.equal(code, 1)
  assert.match(stderr, /longhaul\.yaml:11:5 routes\[0\]\.retries: /)
  assert.doesNotMatch(stdout, /"msg":"started"/)
})

test('serve whose config loader dies without an answer: says so, exit 1, no stack trace', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'longhaul-fifo-'))
  dirs.push(dir)
  const fifo = join(dir, 'longhaul.yaml')
  execFileSync('mkfifo', [fifo])
  const { code, stderr } = await serveToEnd(['--config', fifo], async (serve) => {
    // The loader blocks on the FIFO; killing it is what an OOM kill or a crash looks like.
    const [loader] = await loadersOf(serve.pid!, 1)
    process.kill(loader!, 'SIGKILL')
  })
  assert.equal(code, 1)
  assert.equal(stderr, `${fifo}: the config loader ended (SIGKILL) without an answer\n`)
})

test('a loader outlives no gateway: serve killed while its loader waits on a FIFO, the loader ends too', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'longhaul-fifo-'))
  dirs.push(dir)
  const fifo = join(dir, 'longhaul.yaml')
  execFileSync('mkfifo', [fifo])
  const serve = spawn(process.execPath, [CLI, 'serve', '--config', fifo], { stdio: 'ignore' })
  spawned.push(serve)
  const [loader] = await loadersOf(serve.pid!, 1)
  const killed = new Promise((resolve) => serve.once('exit', resolve))
  serve.kill('SIGKILL')
  await killed
  const until = Date.now() + 5000
  while (existsSync(`/proc/${loader}`) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(existsSync(`/proc/${loader}`), false, `loader ${loader} still running`)
})

test('reloads take turns: a newer file loaded while an older load hangs is the config that stays', async () => {
  const demo = await startDemoUpstream()
  demos.push(demo)
  const text = (streamIdle: string): string => `listen: [{ address: 127.0.0.1:0 }]
admin: { address: 127.0.0.1:0 }
upstreams: { demo: { endpoints: [${demo.url}] } }
routes: [{ name: all, upstream: demo, timeouts: { streamIdle: ${streamIdle} } }]
drain: { delay: 0s, timeout: 1s }
`
  const gw = await startGateway(text('40s'))
  running.push(gw)
  const dir = dirname(gw.configPath)
  // The config file becomes a symlink to a FIFO: the first reload's load blocks until the test
  // writes the older text into it.
  const fifo = join(dir, 'older.yaml')
  execFileSync('mkfifo', [fifo])
  await unlink(gw.configPath)
  await symlink(fifo, gw.configPath)
  gw.process.kill('SIGHUP')
  const [first] = await loadersOf(gw.process.pid!, 1)
  // The write end, opened once the loader has the FIFO open (until then, ENXIO): from here the
  // first load is past the file's name and waits for its text.
  const writer = await writerOf(fifo)
  // Meanwhile the file is replaced by the newer text, and a second SIGHUP asks for it.
  const newer = text('42s')
  await writeFile(join(dir, 'newer.yaml'), newer)
  await symlink(join(dir, 'newer.yaml'), join(dir, 'next.yaml'))
  await rename(join(dir, 'next.yaml'), gw.configPath)
  gw.process.kill('SIGHUP')
  await signalTaken(gw.process.pid!, 'SIGHUP')
  // The second reload waits for the first: loaded beside it, the newer config would be in within
  // this second, and the older one, arriving after it, would be the one that stays.
  await assert.rejects(gw.waitForLine((l) => l.msg === 'config reloaded', 1000), /no matching log line/)
  assert.deepEqual(await childPids(gw.process.pid!, { loadersOnly: true }), [first])
  const older = text('41s')
  await writer.writeFile(older)
  await writer.close()
  const reloads = [await gw.waitForLine((l) => l.msg === 'config reloaded'), await gw.waitForLine((l) => l.msg === 'config reloaded' && l.configHash !== hashOf(older))]
  assert.deepEqual(reloads.map((l) => l.configHash), [hashOf(older), hashOf(newer)])
  assert.deepEqual(gw.lines.filter((l) => l.msg === 'config reloaded').map((l) => l.configHash), [hashOf(older), hashOf(newer)])
  const config = await (await fetch(`${gw.adminUrl}/config`)).json() as { routes: Array<{ timeouts: { streamIdle: { ms: number } } }> }
  assert.equal(config.routes[0]!.timeouts.streamIdle.ms, 42_000)
})
