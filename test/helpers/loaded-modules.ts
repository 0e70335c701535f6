// Loaded with `node --import <this file's URL>?out=FILE` into a gateway under test (and, inherited,
// into its workers): appends `PID URL` to FILE for every module the process loads, so a test can
// read which code a serving process holds.
import { registerHooks } from 'node:module'
import { appendFileSync } from 'node:fs'

const out = new URL(import.meta.url).searchParams.get('out')
if (out === null) throw new Error('loaded-modules.ts: import it with ?out=FILE')
registerHooks({
  load (url, context, nextLoad) {
    // Synchronous on purpose: the hook runs in the middle of module loading, with nothing to await.
    appendFileSync(out, `${process.pid} ${url}\n`)
    return nextLoad(url, context)
  }
})
