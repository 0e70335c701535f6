// normalisePath: the path the router matches and the upstream receives (RFC 3986 §5.2.4, §6).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { normalisePath } from '../src/gateway/path.ts'

function normalised (raw: string): string {
  const result = normalisePath(raw)
  assert.ok('path' in result, `${raw}: ${JSON.stringify(result)}`)
  return result.path
}

test('dot-segments are removed, and never climb above the root', () => {
  const table: Array<[string, string]> = [
    ['/public/../admin', '/admin'],
    ['/public/./file', '/public/file'],
    ['/a/b/../../c', '/c'],
    ['/../../etc/passwd', '/etc/passwd'],
    ['/a/b/..', '/a/'],
    ['/a/.', '/a/'],
    ['/..', '/'],
    ['/a/../', '/'],
    // Not dot-segments: dots inside a name stay.
    ['/v1/file.json', '/v1/file.json'],
    ['/.well-known/x', '/.well-known/x'],
    ['/a/...', '/a/...'],
    ['/a/..b', '/a/..b']
  ]
  for (const [raw, path] of table) assert.equal(normalised(raw), path, raw)
})

test('percent-encoded dots are decoded first, so they are dot-segments too', () => {
  assert.equal(normalised('/public/%2e%2e/admin'), '/admin')
  assert.equal(normalised('/public/%2E%2E/admin'), '/admin')
  assert.equal(normalised('/public/.%2e/admin'), '/admin')
  assert.equal(normalised('/public/%2e/admin'), '/public/admin')
})

test('encoded slashes and backslashes become slashes, so they cannot hide a dot-segment', () => {
  assert.equal(normalised('/public%2F..%2Fadmin'), '/admin')
  assert.equal(normalised('/public%2f%2e%2e%2fadmin'), '/admin')
  assert.equal(normalised('/public%5C..%5Cadmin'), '/admin')
  assert.equal(normalised('/public\\..\\admin'), '/admin')
  assert.equal(normalised('/models/org%2Fname'), '/models/org/name')
})

test('runs of slashes are merged; a trailing slash stays', () => {
  assert.equal(normalised('//admin'), '/admin')
  assert.equal(normalised('/public//..//admin'), '/admin')
  assert.equal(normalised('/a///b/'), '/a/b/')
  assert.equal(normalised('/'), '/')
})

test('encoded unreserved characters are decoded; other encodings are kept with upper-case hex', () => {
  assert.equal(normalised('/%7Euser/%61bc'), '/~user/abc')
  assert.equal(normalised('/a%20b/%e2%82%ac'), '/a%20b/%E2%82%AC')
  assert.equal(normalised('/q%3Fx%23y'), '/q%3Fx%23y')
})

test('a path with nothing to normalise is returned as is', () => {
  for (const raw of ['/', '/v1/chat/completions', '/a-b_c~d/e.f', '/x:y@z!$&\'()*+,;=']) assert.equal(normalised(raw), raw)
})

test('a malformed percent-encoding is an error naming its offset', () => {
  for (const [raw, offset] of [['/a%zz', 2], ['/a%2', 2], ['/%', 1], ['/ok/%g0', 4]] as const) {
    const result = normalisePath(raw)
    assert.ok('error' in result, raw)
    assert.match(result.error, new RegExp(`'%' not followed by two hex digits at offset ${offset}`), raw)
  }
})
