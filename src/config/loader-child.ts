// The config loader process (loader-process.ts): loads the one source it is sent, answers with
// the resolved config or the diagnostics, and ends.
import { writeFileSync } from 'node:fs'
import { ConfigError } from './diagnostics.ts'
import { loadConfigFile, parseConfigText } from './load.ts'
import type { ConfigSource, LoaderAnswer } from './loader-process.ts'

// Short of memory, the kernel's OOM killer should take this process, never the gateway it serves
// (an unprivileged process may raise its own score; where it may not, nothing changes).
try { writeFileSync('/proc/self/oom_score_adj', '1000') } catch { /* not Linux, or not allowed */ }

// Disconnected: the answer is sent, or the gateway is gone (killed, or ended while this load still
// ran) and nobody waits for it. A load stuck on its file (a FIFO, a hung mount) must not outlive
// it, and process.exit would wait for the thread blocked reading that file: end at once.
process.once('disconnect', () => process.kill(process.pid, 'SIGKILL'))

process.once('message', (source: ConfigSource) => {
  void (async (): Promise<LoaderAnswer> => {
    try {
      return { loaded: 'file' in source ? await loadConfigFile(source.file) : parseConfigText(source.text, source.name) }
    } catch (err) {
      return err instanceof ConfigError ? { diagnostics: err.diagnostics } : { failure: (err as Error).message }
    }
  })().then((answer) => process.send!(answer, () => { if (process.connected) process.disconnect() }))
})
