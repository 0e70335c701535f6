// The gateway-wide reset budget (gateway/flood.ts) on a fake clock.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ResetBudget } from '../src/gateway/flood.ts'

function fakeClock (): { now: () => number, advance: (ms: number) => void } {
  let t = 0
  return { now: () => t, advance: (ms) => { t += ms } }
}

test('the budget absorbs a burst, then refills at its rate', () => {
  const clock = fakeClock()
  const budget = new ResetBudget({ rate: 10, burst: 5, perConnection: 1 }, clock.now)
  for (let i = 0; i < 5; i++) assert.equal(budget.take(), true, `token ${i}`)
  assert.equal(budget.take(), false)
  clock.advance(100) // one token at 10 a second
  assert.equal(budget.take(), true)
  assert.equal(budget.take(), false)
  clock.advance(10_000) // never above the burst
  for (let i = 0; i < 5; i++) assert.equal(budget.take(), true)
  assert.equal(budget.take(), false)
})

test('once the budget is spent, only a session at perConnection resets in its second is cut', () => {
  const clock = fakeClock()
  const budget = new ResetBudget({ rate: 1, burst: 3, perConnection: 4 }, clock.now)
  const abuser = budget.session()
  const bystander = budget.session()
  assert.deepEqual([abuser.reset(), abuser.reset(), abuser.reset()], [false, false, false]) // the burst
  // Spent: the bystander's one reset is not enough to cut it; the abuser's fourth is.
  assert.equal(bystander.reset(), false)
  assert.equal(abuser.reset(), true)
  // A new second: the abuser's count starts again.
  clock.advance(1000)
  assert.equal(abuser.reset(), false) // a token refilled
  assert.equal(abuser.reset(), false)
})
