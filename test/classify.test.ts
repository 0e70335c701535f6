// classifyFailure: a request undici refuses to send is the client's bad_request, not the upstream's fault; a failed TLS handshake reached no backend.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { errors } from 'undici'
import { classifyFailure } from '../src/gateway/classify.ts'
import { noteConnectFailure } from '../src/upstream/endpoint.ts'

test('undici\'s invalid-argument error is bad_request, neither retried nor held against the endpoint', () => {
  const failure = classifyFailure(new errors.InvalidArgumentError('invalid host header'), false)
  assert.equal(failure.ending.outcome, 'bad_request')
  assert.match(failure.ending.detail!, /cannot be forwarded \(invalid host header\)/)
  // 'other': the retry policy does not retry it and outlier ejection does not count it.
  assert.equal(failure.kind, 'other')
  assert.equal(failure.stale, false)
})

test('a TLS handshake that failed is upstream_unavailable, retried elsewhere like a refused connection', () => {
  for (const code of ['ERR_TLS_CERT_ALTNAME_INVALID', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'ERR_SSL_WRONG_VERSION_NUMBER']) {
    const err = Object.assign(new Error('handshake'), { code })
    noteConnectFailure(err)
    const failure = classifyFailure(err, false)
    assert.equal(failure.ending.outcome, 'upstream_unavailable', code)
    assert.equal(failure.ending.detail, `TLS handshake failed: ${code} (handshake)`)
    assert.equal(failure.kind, 'connect')
  }
})

test('a TLS error on a connection that carried the request is a reset, never retried as a connect failure', () => {
  // A bad record after the request went out (an HTTP/2 upstream passes it on as it is): the
  // backend may have the request, so it must not be sent again as if nothing had reached it.
  const err = Object.assign(new Error('bad record mac'), { code: 'ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC' })
  const failure = classifyFailure(err, false)
  assert.equal(failure.ending.outcome, 'upstream_reset')
  assert.notEqual(failure.kind, 'connect')
})
