// Durations and sizes as written in a config: always with a unit, never a bare number.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatDuration, parseDuration, parseSize } from '../src/config/units.ts'

test('parseDuration reads every unit into whole milliseconds', () => {
  const table: Array<[string, number]> = [
    ['250ms', 250],
    ['0ms', 0],
    ['0s', 0],
    ['1s', 1000],
    ['30s', 30_000],
    ['620s', 620_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['24h', 86_400_000],
    ['1.5s', 1500],
    ['0.25s', 250],
    ['1.5m', 90_000],
    ['0.5h', 1_800_000],
    // Sub-millisecond fractions round to whole milliseconds.
    ['1.4ms', 1],
    ['1.6ms', 2],
    // Surrounding whitespace is tolerated (the schema itself does not let it through).
    [' 30s ', 30_000]
  ]
  for (const [text, ms] of table) assert.equal(parseDuration(text), ms, text)
})

test('parseDuration rejects a bare number, an unknown unit and other shapes with a message', () => {
  const table = ['30', '0', '', 's', '5x', '5S', '1H', '5sec', '5 s', '-1s', '+1s', '1.s', '.5s', '1e3ms', '1m30s', 'none', 'auto']
  for (const text of table) {
    const result = parseDuration(text)
    assert.equal(typeof result, 'string', `${JSON.stringify(text)} gave ${String(result)}`)
    assert.match(result as string, /invalid duration/)
    assert.ok((result as string).includes(`'${text}'`), `the message quotes the input: ${result as string}`)
    assert.match(result as string, /ms, s, m, h/)
  }
})

test('parseSize reads B, KiB, MiB and GiB into bytes', () => {
  const table: Array<[string, number]> = [
    ['0B', 0],
    ['512B', 512],
    ['1KiB', 1024],
    ['16KiB', 16 * 1024],
    ['1MiB', 1024 ** 2],
    ['100MiB', 100 * 1024 ** 2],
    ['1GiB', 1024 ** 3],
    ['4GiB', 4 * 1024 ** 3],
    [' 16KiB ', 16 * 1024]
  ]
  for (const [text, bytes] of table) assert.equal(parseSize(text), bytes, text)
})

test('parseSize rejects a bare number, decimal units, fractions and wrong case with a message', () => {
  const table = ['1024', '', 'KiB', '16KB', '16kb', '16kib', '16K', '1.5MiB', '-1KiB', '16 KiB', '1TiB', '16KiBs']
  for (const text of table) {
    const result = parseSize(text)
    assert.equal(typeof result, 'string', `${JSON.stringify(text)} gave ${String(result)}`)
    assert.match(result as string, /invalid size/)
    assert.ok((result as string).includes(`'${text}'`), `the message quotes the input: ${result as string}`)
    assert.match(result as string, /B, KiB, MiB, GiB/)
  }
})

test('formatDuration writes the largest unit that is exact', () => {
  const table: Array<[number | null, string]> = [
    [null, 'none'],
    [0, '0ms'],
    [1, '1ms'],
    [999, '999ms'],
    [1000, '1s'],
    [1500, '1500ms'],
    [59_000, '59s'],
    [60_000, '1m'],
    [61_000, '61s'],
    [90_000, '90s'],
    [300_000, '5m'],
    [5_400_000, '90m'],
    [3_600_000, '1h'],
    [7_200_000, '2h'],
    [86_400_000, '24h'],
    [3_600_001, '3600001ms']
  ]
  for (const [ms, text] of table) assert.equal(formatDuration(ms), text, String(ms))
})

test('formatDuration output parses back to the same milliseconds', () => {
  for (const ms of [0, 1, 250, 1000, 1500, 90_000, 300_000, 3_600_000, 5_400_000, 86_400_000, 123_456_789]) {
    assert.equal(parseDuration(formatDuration(ms)), ms, String(ms))
  }
})
