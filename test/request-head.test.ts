// checkRequestHead: the head checks made before routing (gateway/request-head.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { authorityConflict, checkRequestHead, type AcceptedHead, type HeadRefusal } from '../src/gateway/request-head.ts'

function head (url: string, rawHeaders: string[] = ['host', 'gw.test'], version = '1.1', headers: Record<string, string> = {}): IncomingMessage {
  return { url, rawHeaders, headers, httpVersion: version, httpVersionMajor: Number(version[0]) } as unknown as IncomingMessage
}

function refused (result: HeadRefusal | AcceptedHead): HeadRefusal {
  assert.ok('ending' in result, JSON.stringify(result))
  assert.equal(result.ending.outcome, 'bad_request')
  return result
}

test('an accepted head gives the normalised path and the target to forward, query untouched', () => {
  assert.deepEqual(checkRequestHead(head('/v1/chat?x=1'), true, 100), { path: '/v1/chat', target: '/v1/chat?x=1' })
  assert.deepEqual(checkRequestHead(head('/public/../admin?q=/../'), true, 100), { path: '/admin', target: '/admin?q=/../' })
})

test('a foreign HTTP major version on an HTTP/1.1 connection is 505; HTTP/2 streams are not checked for it', () => {
  assert.equal(refused(checkRequestHead(head('/', ['host', 'a'], '2.0'), true, 100)).ending.variant, 'version_not_supported')
  assert.ok('path' in checkRequestHead(head('/', ['host', 'a'], '2.0'), false, 100))
  assert.ok('path' in checkRequestHead(head('/', ['host', 'a'], '1.0'), true, 100))
})

test('more header fields than maxHeaderCount is 431', () => {
  const raw = Array.from({ length: 11 }, (_, i) => [`x-${i}`, 'v']).flat()
  const r = refused(checkRequestHead(head('/', raw), true, 10))
  assert.equal(r.ending.variant, 'head_too_large')
  assert.match(r.ending.detail!, /maxHeaderCount \(10\)/)
  assert.ok('path' in checkRequestHead(head('/', raw.slice(2)), true, 10))
})

test('two Host fields are 400, whatever their case', () => {
  const r = refused(checkRequestHead(head('/', ['Host', 'a.test', 'HOST', 'b.test']), true, 100))
  assert.equal(r.ending.variant, undefined)
  assert.match(r.ending.detail!, /more than one Host/)
})

test('a target that is not a path, or a path that cannot be normalised, is 400', () => {
  assert.match(refused(checkRequestHead(head('http://elsewhere/'), true, 100)).ending.detail!, /origin-form/)
  assert.match(refused(checkRequestHead(head('*'), true, 100)).ending.detail!, /origin-form/)
  assert.match(refused(checkRequestHead(head('/a%zz'), true, 100)).ending.detail!, /two hex digits/)
})

test('on HTTP/2, a host field that differs from :authority is malformed (400)', () => {
  const h2 = (host: string): IncomingMessage => head('/', ['host', host], '2.0', { ':authority': 'public.test', host })
  assert.match(refused(checkRequestHead(h2('admin.test'), false, 100)).ending.detail!, /differs from :authority/)
  assert.ok('path' in checkRequestHead(h2('public.test'), false, 100))
})

test('a host field that differs from :authority is a conflict; case and absence are not', () => {
  assert.match(authorityConflict('public.test', 'admin.test')!, /differs from :authority/)
  assert.equal(authorityConflict('Public.Test', 'public.test'), null)
  assert.equal(authorityConflict('public.test', undefined), null)
  assert.equal(authorityConflict(undefined, 'admin.test'), null)
})
