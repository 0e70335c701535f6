// The one memory-reducing collection before serving (lifecycle/compact-heap.ts): it gives back the
// young generation start-up grew, and leaves no `gc` behind for the gateway's code or its
// dependencies to call.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import v8 from 'node:v8'
import { compactHeapAfterStartUp } from '../src/lifecycle/compact-heap.ts'

const newSpaceBytes = (): number => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.physical_space_size

test('compactHeapAfterStartUp shrinks the young generation a burst of allocation grew, and exposes no gc', () => {
  // A start-up-like burst: many objects that live a while, so V8 grows the young generation.
  let kept: object[] = []
  for (let round = 0; round < 40; round++) {
    kept = Array.from({ length: 20_000 }, (_, i) => ({ i, s: `value ${i}`, list: [i, i + 1] }))
  }
  assert.equal(kept.length, 20_000)
  kept = []
  const grown = newSpaceBytes()
  compactHeapAfterStartUp()
  const after = newSpaceBytes()
  assert.ok(after < grown, `young generation ${grown} -> ${after} bytes`)
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined')
})
