// Starts the real gateway as a child process (bin/longhaul serve) on a config written to a temp
// file, with ephemeral ports, and reads its JSON log lines from stdout.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, writeFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const CLI = join(ROOT, 'src', 'cli.ts')

export type LogLine = Record<string, unknown> & { msg: string }

export interface RunningGateway {
  /** http://127.0.0.1:PORT of the first listener. */
  url: string
  /** Every listener, as HOST:PORT. */
  addresses: string[]
  adminUrl: string
  process: ChildProcess
  configPath: string
  lines: LogLine[]
  stderr: () => string
  /** Resolves once stderr matches (it is written after the `started` line). */
  waitForStderr: (pattern: RegExp, timeoutMs?: number) => Promise<string>
  /** Resolves with the first log line (already seen or still to come) that matches. */
  waitForLine: (match: (line: LogLine) => boolean, timeoutMs?: number) => Promise<LogLine>
  /** The access line of a request, by its x-request-id. */
  accessLine: (requestId: string, timeoutMs?: number) => Promise<LogLine>
  /** Sends a signal (SIGKILL after killAfterMs) and resolves with the exit code. */
  stop: (signal?: NodeJS.Signals, killAfterMs?: number) => Promise<number | null>
  exited: Promise<number | null>
}

/**
 * A YAML route entry for test configs: matched by `/NAME/`, forwarded with that prefix stripped,
 * `extra` lines (indented 4 spaces) appended.
 */
export function prefixRoute (name: string, extra: string, upstream = 'demo'): string {
  return `
  - name: ${name}
    match: { pathPrefix: /${name}/ }
    upstream: ${upstream}
    rewrite: { stripPrefix: /${name} }
${extra}`
}

export async function writeConfig (text: string): Promise<{ path: string, dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'longhaul-test-'))
  const path = join(dir, 'longhaul.yaml')
  await writeFile(path, text)
  return { path, dir }
}

/** Runs the CLI to completion (for `check` and usage errors). */
export function runCli (args: string[], options: { cwd?: string } = {}): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('exit', (code) => resolve({ code, stdout, stderr }))
  })
}

/**
 * Starts `longhaul serve --config <file>` with the given YAML (use `127.0.0.1:0` addresses), and
 * resolves once it logged `started`. Pass `args` instead of a config for the embedded demo, and
 * `nodeArgs` for Node itself (an `--import` that injects a fault).
 */
export async function startGateway (configText: string | null, options: { args?: string[], nodeArgs?: string[], startTimeoutMs?: number } = {}): Promise<RunningGateway> {
  let configPath = ''
  let dir: string | null = null
  const args = [...(options.nodeArgs ?? []), CLI, 'serve']
  if (configText !== null) {
    // Teardown speed: without a drain block of its own, a test gateway drains with no delay and
    // cuts what is left after 1 s (the defaults, 5 s and 10 m, are for production).
    const text = /^drain:/m.test(configText) ? configText : `${configText}\ndrain: { delay: 0s, timeout: 1s }\n`
    const written = await writeConfig(text)
    configPath = written.path
    dir = written.dir
    args.push('--config', configPath)
  }
  args.push(...(options.args ?? []))
  return await launch(args, { cwd: dir ?? ROOT, configPath, removeOnExit: dir, startTimeoutMs: options.startTimeoutMs })
}

/**
 * Starts `longhaul serve --config <configPath>` on a config file the test laid out itself (a
 * symlinked ConfigMap layout, say); the file is left in place when the gateway exits.
 */
export async function startGatewayWithFile (configPath: string, options: { args?: string[], startTimeoutMs?: number } = {}): Promise<RunningGateway> {
  const args = [CLI, 'serve', '--config', configPath, ...(options.args ?? [])]
  return await launch(args, { cwd: dirname(configPath), configPath, removeOnExit: null, startTimeoutMs: options.startTimeoutMs })
}

async function launch (args: string[], options: { cwd: string, configPath: string, removeOnExit: string | null, startTimeoutMs: number | undefined }): Promise<RunningGateway> {
  const { configPath } = options
  const dir = options.removeOnExit
  const child = spawn(process.execPath, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: LogLine[] = []
  const waiters = new Set<{ match: (l: LogLine) => boolean, resolve: (l: LogLine) => void }>()
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const waitForStderr = (pattern: RegExp, timeoutMs = 5000): Promise<string> => new Promise((resolve, reject) => {
    if (pattern.test(stderr)) return resolve(stderr)
    const onData = (): void => {
      if (!pattern.test(stderr)) return
      clearTimeout(timer)
      child.stderr!.off('data', onData)
      resolve(stderr)
    }
    const timer = setTimeout(() => {
      child.stderr!.off('data', onData)
      reject(new Error(`stderr did not match ${String(pattern)} within ${timeoutMs} ms: ${stderr.slice(-2000)}`))
    }, timeoutMs)
    // Registered after the collecting listener, so `stderr` already holds the new chunk.
    child.stderr!.on('data', onData)
  })
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: LogLine
    try { line = JSON.parse(text) as LogLine } catch { return }
    lines.push(line)
    for (const w of waiters) if (w.match(line)) { waiters.delete(w); w.resolve(line) }
  })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  void exited.then(async () => { if (dir !== null) await rm(dir, { recursive: true, force: true }) })

  const waitForLine = (match: (line: LogLine) => boolean, timeoutMs = 5000): Promise<LogLine> => {
    const seen = lines.find(match)
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const waiter = { match, resolve: (l: LogLine) => { clearTimeout(timer); resolve(l) } }
      const timer = setTimeout(() => {
        waiters.delete(waiter)
        reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}; last lines: ${JSON.stringify(lines.slice(-5))}`))
      }, timeoutMs)
      waiters.add(waiter)
    })
  }

  let started: LogLine
  try {
    started = await Promise.race([
      waitForLine((l) => l.msg === 'started', options.startTimeoutMs ?? 15000),
      exited.then((code) => { throw new Error(`gateway exited with ${code} before starting: ${stderr}`) })
    ])
  } catch (err) {
    // A gateway that did not start in time must not outlive its test (it would keep the file's process alive).
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    throw err
  }
  const addresses = started.listeners as string[]
  return {
    url: `http://${addresses[0]!}`,
    addresses,
    adminUrl: `http://${started.admin as string}`,
    process: child,
    configPath,
    lines,
    stderr: () => stderr,
    waitForStderr,
    waitForLine,
    accessLine: (requestId, timeoutMs) => waitForLine((l) => l.msg === 'access' && l.requestId === requestId, timeoutMs),
    stop: async (signal = 'SIGTERM', killAfterMs = 5000) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      // A gateway that does not exit in time (a test left a stream open) must not hang the suite.
      const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs)
      const code = await exited
      clearTimeout(timer)
      return code
    },
    exited
  }
}
