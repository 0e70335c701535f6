// The Deadline in process, on a clock the test moves (STYLE.md §1.4): which limit fires, when, by
// which name, and what re-arms, pauses and stops each clock. The end-to-end timeout tests show
// the same limits through a real gateway; these pin the timing exactly, without sleeping.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Deadline, type RequestLimits } from '../src/gateway/deadline.ts'
import type { Ending } from '../src/gateway/outcome.ts'
import { FakeClock } from './helpers/clock.ts'

const LIMITS: RequestLimits = { totalMs: 10_000, totalOutcome: 'request_timeout', totalSource: 'route', firstByteMs: 1000, firstByteOutcome: 'first_byte_timeout', streamIdleMs: 300, firstEventMs: null, awaitsFirstEvent: false, tunnelIdleMs: 500 }
const DOWNSTREAM = { bodyIdleTimeoutMs: 200, sendTimeoutMs: 400 }

function deadline (limits: Partial<RequestLimits> = {}, clock = new FakeClock()): { clock: FakeClock, d: Deadline, endings: Ending[] } {
  const endings: Ending[] = []
  const d = new Deadline({ ...LIMITS, ...limits }, DOWNSTREAM, (ending) => endings.push(ending), clock)
  return { clock, d, endings }
}

test('firstByte fires at its limit, not a millisecond before, with its outcome and limit', () => {
  const { clock, endings } = deadline()
  clock.tick(999)
  assert.deepEqual(endings, [])
  clock.tick(1)
  assert.deepEqual(endings, [{ outcome: 'first_byte_timeout', limitMs: 1000 }])
})

test('response headers stop firstByte and start streamIdle; each chunk re-arms it', () => {
  const { clock, d, endings } = deadline()
  clock.tick(900)
  d.responseStarted()
  for (let i = 0; i < 10; i++) {
    clock.tick(290)
    d.touch()
  }
  assert.deepEqual(endings, [], 'chunks every 290 ms keep a 300 ms streamIdle from firing, and firstByte is gone')
  clock.tick(300)
  assert.deepEqual(endings, [{ outcome: 'stream_idle_timeout', limitMs: 300 }])
})

test('a client holding the response back pauses streamIdle and runs sendTimeout; draining swaps them back', () => {
  const { clock, d, endings } = deadline()
  d.responseStarted()
  d.sendBlocked()
  clock.tick(399)
  assert.deepEqual(endings, [], 'a slow client is not a silent upstream')
  d.sendDrained()
  clock.tick(299)
  assert.deepEqual(endings, [], 'streamIdle starts again from the drain')
  clock.tick(1)
  assert.deepEqual(endings, [{ outcome: 'stream_idle_timeout', limitMs: 300 }])

  const blocked = deadline()
  blocked.d.responseStarted()
  blocked.d.sendBlocked()
  blocked.clock.tick(400)
  assert.deepEqual(blocked.endings, [{ outcome: 'client_send_timeout', limitMs: 400 }])
})

test('the total budget bounds the whole exchange whatever the traffic, under the name it was given', () => {
  const { clock, d, endings } = deadline({ totalMs: 2000, totalOutcome: 'client_deadline_exceeded', firstByteMs: null })
  d.responseStarted()
  for (let i = 0; i < 19; i++) {
    clock.tick(100)
    d.touch()
  }
  clock.tick(99)
  assert.deepEqual(endings, [])
  clock.tick(1)
  assert.deepEqual(endings, [{ outcome: 'client_deadline_exceeded', limitMs: 2000 }])
})

test('bodyIdle runs only while the gateway waits for the next request body chunk', () => {
  const { clock, d, endings } = deadline({ firstByteMs: null })
  d.awaitingBody()
  clock.tick(150)
  d.bodyArrived()
  clock.tick(500) // the upstream holds the body back: not the client's silence
  d.awaitingBody()
  clock.tick(199)
  assert.deepEqual(endings, [])
  clock.tick(1)
  assert.deepEqual(endings, [{ outcome: 'request_body_timeout', limitMs: 200 }])
})

test('an open tunnel: firstByte stops, tunnelIdle is re-armed by bytes either way, request still bounds it', () => {
  const { clock, d, endings } = deadline({ totalMs: 3000 })
  clock.tick(500)
  d.tunnelOpened()
  for (let i = 0; i < 4; i++) {
    clock.tick(450)
    d.tunnelActivity()
  }
  assert.deepEqual(endings, [])
  clock.tick(500)
  assert.deepEqual(endings, [{ outcome: 'tunnel_idle_timeout', limitMs: 500 }])

  const busy = deadline({ totalMs: 3000 })
  busy.d.tunnelOpened()
  for (let i = 0; i < 8; i++) {
    busy.clock.tick(400)
    busy.d.tunnelActivity()
  }
  assert.deepEqual(busy.endings, [{ outcome: 'request_timeout', limitMs: 3000 }])
})

test('stop(): no limit fires afterwards', () => {
  const { clock, d, endings } = deadline()
  d.responseStarted()
  d.sendBlocked()
  d.awaitingBody()
  d.stop()
  clock.tick(60_000)
  assert.deepEqual(endings, [])
  assert.equal(d.phase, 'done')
})

test('remainingMs: the budget left for the upstream, never 0 (which would read as none), null when unlimited', () => {
  const { clock, d } = deadline({ totalMs: 1000, firstByteMs: null })
  clock.tick(250.6)
  assert.equal(d.remainingMs(), 749)
  clock.tick(749.9)
  assert.equal(d.remainingMs(), 1)
  assert.equal(deadline({ totalMs: null }).d.remainingMs(), null)
})

test('firstEvent: from the headers to the first answer event streamIdle does not run; after it, streamIdle governs', () => {
  const { clock, d, endings } = deadline({ firstEventMs: 2000, awaitsFirstEvent: true })
  clock.tick(100)
  d.responseStarted()
  d.touch() // a comment: no event, and no silence of streamIdle's
  clock.tick(1500) // far past streamIdle (300)
  assert.deepEqual(endings, [])
  d.firstEventArrived()
  clock.tick(299)
  assert.deepEqual(endings, [])
  clock.tick(1)
  assert.deepEqual(endings, [{ outcome: 'stream_idle_timeout', limitMs: 300 }])
})

test('firstEvent fires at its limit after the headers, as first_event_timeout; a held retry puts it back to wait for headers', () => {
  const cut = deadline({ firstEventMs: 2000, awaitsFirstEvent: true })
  cut.d.responseStarted()
  cut.clock.tick(1999)
  assert.deepEqual(cut.endings, [])
  cut.clock.tick(1)
  assert.deepEqual(cut.endings, [{ outcome: 'first_event_timeout', limitMs: 2000 }])

  const retried = deadline({ firstEventMs: 2000, awaitsFirstEvent: true })
  retried.d.responseStarted()
  retried.clock.tick(1500)
  retried.d.retryingResponse()
  retried.clock.tick(1000) // the first try's firstEvent would have fired by now
  assert.deepEqual(retried.endings, [])
  retried.d.responseStarted() // the next try's headers: a fresh firstEvent
  retried.clock.tick(1999)
  assert.deepEqual(retried.endings, [])
  retried.clock.tick(1)
  assert.deepEqual(retried.endings, [{ outcome: 'first_event_timeout', limitMs: 2000 }])
})

test('a chunk moves no timer: one timer per Deadline, set again for the rest when it fires early', () => {
  const { clock, d, endings } = deadline({ totalMs: null, firstByteMs: 1000, streamIdleMs: 300 })
  assert.equal(clock.set, 1, 'firstByte sets the one timer')
  clock.tick(100)
  d.responseStarted()
  assert.equal(clock.set, 2, 'streamIdle falls due before firstByte would: the timer is moved once')
  for (let i = 0; i < 100; i++) {
    clock.tick(10)
    d.touch()
  }
  // 1000 ms of chunks every 10 ms: the timer fired at each 300 ms mark and was set for the rest.
  assert.ok(clock.set <= 2 + 4, `timers set: ${clock.set}`)
  assert.deepEqual(endings, [])
  clock.tick(299)
  assert.deepEqual(endings, [])
  clock.tick(1)
  assert.deepEqual(endings, [{ outcome: 'stream_idle_timeout', limitMs: 300 }])
})

test('a limit set to fire later than an armed one waits for it; stop() clears the one timer', () => {
  const { clock, d, endings } = deadline({ totalMs: null, firstByteMs: 1000, streamIdleMs: 5000 })
  clock.tick(100)
  d.responseStarted()
  assert.equal(clock.set, 1, 'streamIdle falls due after the timer firstByte set: nothing moves')
  clock.tick(4999)
  assert.deepEqual(endings, [], 'the timer fired at firstByte\'s instant, found it gone, and waited for streamIdle')
  clock.tick(1)
  assert.deepEqual(endings, [{ outcome: 'stream_idle_timeout', limitMs: 5000 }])

  const stopped = deadline({ totalMs: null })
  stopped.d.stop()
  assert.equal(stopped.clock.cleared, 1)
  stopped.clock.tick(20_000)
  assert.deepEqual(stopped.endings, [])
})

test('a timer that fires a fraction early (Node counts whole milliseconds) never cuts early', () => {
  const { clock, endings } = deadline({}, new FakeClock({ earlyMs: 0.4 }))
  clock.tick(999.9)
  assert.deepEqual(endings, [], 'the timer fired at 999.6 ms and was set again')
  clock.tick(0.6)
  assert.deepEqual(endings, [{ outcome: 'first_byte_timeout', limitMs: 1000 }])
})

test('firstByte set by the client (its SDK\'s timeout) fires as client_deadline_exceeded and is shown as the client deadline', () => {
  const { clock, d, endings } = deadline({ firstByteMs: 700, firstByteOutcome: 'client_deadline_exceeded' })
  assert.deepEqual(d.progress().find((p) => p.limitMs === 700)?.limit, 'client deadline')
  clock.tick(699)
  assert.deepEqual(endings, [])
  clock.tick(1)
  assert.deepEqual(endings, [{ outcome: 'client_deadline_exceeded', limitMs: 700 }])
})
