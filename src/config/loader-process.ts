// `serve` reads, parses and validates its config in a short-lived child process (loader-child.ts)
// and gets back the resolved RuntimeConfig: the YAML parser and the schema validator, about
// 10 MiB of a serving process's memory once loaded (a loaded module is never unloaded), never sit
// in the gateway. Start and every reload load this way; the workers of a pool get the resolved
// config from their primary. `check` and the doctor load in their own process, which ends when
// they do.
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { ConfigError, type Diagnostic } from './diagnostics.ts'
import type { LoadedConfig } from './load.ts'

/** What to load: a file, or text that came from somewhere else (the embedded demo). */
export type ConfigSource = { readonly file: string } | { readonly text: string, readonly name: string }

/** The child's one answer. */
export type LoaderAnswer =
  | { readonly loaded: LoadedConfig }
  | { readonly diagnostics: readonly Diagnostic[] }
  | { readonly failure: string }

/** The loader gave no config and no diagnostics: it could not start, hung, crashed or failed. */
export class ConfigLoaderError extends Error {
  override readonly name = 'ConfigLoaderError'
}

/** A loader that has not answered by then is killed: a config file on a stalled network mount does not hold a start or a reload forever. */
export const LOADER_TIMEOUT_MS = 30_000

const CHILD = fileURLToPath(new URL('./loader-child.ts', import.meta.url))
/** The end of the child's stderr kept for an error message. */
const STDERR_KEPT = 2000

/**
 * Resolves with the loaded config; rejects with ConfigError (the file's diagnostics, exactly as an
 * in-process load gives them) or with ConfigLoaderError, which says why the loader gave neither.
 */
export function loadConfigApart (source: ConfigSource, { timeoutMs = LOADER_TIMEOUT_MS } = {}): Promise<LoadedConfig> {
  return new Promise((resolve, reject) => {
    // The gateway's flags (--inspect, a V8 heap size) are not the loader's: no execArgv, no
    // NODE_OPTIONS (an --inspect-brk there would hold every load until the bound).
    const { NODE_OPTIONS: _, ...env } = process.env
    // A loader outlives no gateway, whichever way the gateway ends: it ends itself once its IPC
    // channel closes (loader-child.ts).
    const child = fork(CHILD, [], { execArgv: [], env, serialization: 'advanced', stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
    let stderr = ''
    child.stderr!.setEncoding('utf8').on('data', (text: string) => { stderr = (stderr + text).slice(-STDERR_KEPT) })
    let settled = false
    const settle = (outcome: () => void): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      outcome()
    }
    const fail = (message: string): void => settle(() => reject(new ConfigLoaderError(message)))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      fail(`the config loader gave no answer within ${timeoutMs / 1000} s`)
    }, timeoutMs)
    // Settled on the answer itself: the child ends on its own once it has sent it.
    child.once('message', (answer: LoaderAnswer) => settle(() => {
      if ('loaded' in answer) resolve(answer.loaded)
      else if ('diagnostics' in answer) reject(new ConfigError(answer.diagnostics))
      else reject(new ConfigLoaderError(answer.failure))
    }))
    child.once('error', (err) => {
      child.kill('SIGKILL')
      fail(`the config loader failed: ${err.message}`)
    })
    // 'close': the process ended and its stderr is read to the end.
    child.once('close', (code, signal) => {
      const why = signal === null ? `code ${String(code)}` : signal
      fail(`the config loader ended (${why}) without an answer${stderr.trim() === '' ? '' : `: ${stderr.trim()}`}`)
    })
    child.send(source)
  })
}
