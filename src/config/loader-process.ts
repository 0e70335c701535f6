// `serve` reads, parses and validates its config in a short-lived child process (loader-child.ts)
// and gets back the resolved RuntimeConfig: the YAML parser and the schema validator, about
// 10 MiB of a serving process's memory once loaded (a loaded module is never unloaded), never sit
// in the gateway. Start, reload and every worker of a pool get their config this way; `check`
// and the doctor load in their own process, which ends when they do.
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

/** A loader that has not answered by then is killed: a config file on a stalled network mount does not hold a start or a reload forever. */
export const LOADER_TIMEOUT_MS = 30_000

const CHILD = fileURLToPath(new URL('./loader-child.ts', import.meta.url))
/** The end of the child's stderr kept for an error message. */
const STDERR_KEPT = 2000

/**
 * Resolves with the loaded config; rejects with ConfigError (the file's diagnostics, exactly as an
 * in-process load gives them) or with an Error that says why the loader gave no answer.
 */
export function loadConfigApart (source: ConfigSource, { timeoutMs = LOADER_TIMEOUT_MS } = {}): Promise<LoadedConfig> {
  return new Promise((resolve, reject) => {
    // No execArgv: the parent's flags (--inspect, a V8 heap size) are the gateway's, not the loader's.
    const child = fork(CHILD, [], { execArgv: [], serialization: 'advanced', stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
    let stderr = ''
    child.stderr!.setEncoding('utf8').on('data', (text: string) => { stderr = (stderr + text).slice(-STDERR_KEPT) })
    let answer: LoaderAnswer | undefined
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the config loader gave no answer within ${timeoutMs / 1000} s`))
    }, timeoutMs)
    child.once('message', (message: LoaderAnswer) => { answer = message })
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`the config loader could not start: ${err.message}`))
    })
    // 'close': the process ended and its stderr is read to the end.
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      if (answer === undefined) {
        const why = signal === null ? `code ${String(code)}` : signal
        reject(new Error(`the config loader ended (${why}) without an answer${stderr.trim() === '' ? '' : `: ${stderr.trim()}`}`))
      } else if ('loaded' in answer) {
        resolve(answer.loaded)
      } else if ('diagnostics' in answer) {
        reject(new ConfigError(answer.diagnostics))
      } else {
        reject(new Error(answer.failure))
      }
    })
    child.send(source)
  })
}
