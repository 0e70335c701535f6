// classifyFailure: a request undici refuses to send is the client's bad_request, not the upstream's fault.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { errors } from 'undici'
import { classifyFailure } from '../src/gateway/classify.ts'

test('undici\'s invalid-argument error is bad_request, neither retried nor held against the endpoint', () => {
  const failure = classifyFailure(new errors.InvalidArgumentError('invalid host header'), false)
  assert.equal(failure.ending.outcome, 'bad_request')
  assert.match(failure.ending.detail!, /cannot be forwarded \(invalid host header\)/)
  // 'other': the retry policy does not retry it and outlier ejection does not count it.
  assert.equal(failure.kind, 'other')
  assert.equal(failure.stale, false)
})
