// Hot reload on SIGHUP or `serve --watch`: load and validate (in the config loader process), swap.
// An invalid file changes nothing and is reported (log, /status,
// longhaul_config_reloads_total{result="error"}).
import { watch, type FSWatcher } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { basename, dirname } from 'node:path'
import { loadConfigApart } from '../config/loader-process.ts'
import { ConfigError, formatDiagnostic } from '../config/diagnostics.ts'
import type { RuntimeConfig } from '../config/runtime.ts'
import type { ReloadResult } from '../gateway/server.ts'
import type { GatewayLog } from '../observe/log.ts'

/** What a reload swaps the config of: one gateway process, or the primary of a worker pool. */
export interface Reloadable {
  readonly config: RuntimeConfig
  readonly log: GatewayLog
  reload (config: RuntimeConfig): Promise<ReloadResult>
  reloadFailed (errors: string[]): ReloadResult
}

/** Per server, the end of the reload that runs last: reloads run one at a time, in the order asked. */
const lastReload = new WeakMap<Reloadable, Promise<void>>()

/**
 * Reloads take turns: each loads in a process of its own and may take a while, and an older load
 * finishing after a newer one must not be the config that stays.
 */
export function reloadFrom (server: Reloadable, file: string): Promise<void> {
  const next = (lastReload.get(server) ?? Promise.resolve()).then(async () => await reloadNow(server, file))
  lastReload.set(server, next)
  return next
}

async function reloadNow (server: Reloadable, file: string): Promise<void> {
  try {
    const { config, warnings } = await loadConfigApart({ file })
    const result = await server.reload(config)
    server.log.configWarnings(warnings)
    server.log.reloaded(config.source.path, config.source.hash, result.restartRequired)
  } catch (err) {
    const errors = err instanceof ConfigError
      ? err.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)
      : [`${file}: ${(err as Error).message}`]
    server.reloadFailed(errors)
    server.log.reloadFailed(file, errors)
  }
}

/** Debounce for editors and ConfigMap updates, which touch the file or directory several times. */
const SETTLE_MS = 100

/**
 * Watches the config file's directory, not the file: a Kubernetes ConfigMap volume is updated by
 * swapping a `..data` symlink, which a watch on the file itself (its old inode) never sees. A
 * change reloads only when the content really changed (its hash).
 */
export function watchConfig (server: Reloadable, file: string): FSWatcher {
  const name = basename(file)
  let timer: NodeJS.Timeout | undefined
  let lastHash = server.config.source.hash
  const check = async (): Promise<void> => {
    let hash: string
    try {
      hash = createHash('sha256').update(await readFile(file)).digest('hex').slice(0, 12)
    } catch {
      return // mid-swap: the next event reloads it
    }
    if (hash === lastHash) return
    lastHash = hash
    await reloadFrom(server, file)
  }
  const watcher = watch(dirname(file), (_event, changed) => {
    if (changed !== null && changed !== name && !changed.startsWith('..')) return
    clearTimeout(timer)
    timer = setTimeout(() => { void check() }, SETTLE_MS)
  })
  watcher.unref()
  return watcher
}
