// An https:// upstream: TLS names the endpoint (SNI and the certificate check use the host of its
// URL), never the client's Host header, which the gateway forwards unchanged; requests with
// different Host headers share the endpoint's pooled connection; a handshake that fails is
// `upstream_unavailable` naming the TLS error, not a reset.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import https from 'node:https'
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { request } from 'undici'
import { startGateway, type RunningGateway } from './helpers/gateway.ts'
import { makeTestCertificate, type TestCertificate } from './helpers/tls.ts'

let cert: TestCertificate
/** A certificate the gateway does not trust. */
let untrustedCert: TestCertificate
let upstream: https.Server
let untrusted: https.Server
let plain: http.Server
/** The TLS name (SNI) of each connection the upstream accepted, false (or null) when none was sent. */
const connections: Array<string | false | null> = []
let gw: RunningGateway

before(async () => {
  cert = makeTestCertificate()
  untrustedCert = makeTestCertificate()
  upstream = https.createServer({ cert: cert.cert, key: readFileSync(cert.keyPath) }, (req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ host: req.headers.host, sni: (req.socket as TLSSocket).servername }))
  })
  upstream.on('secureConnection', (socket: TLSSocket) => connections.push(socket.servername))
  untrusted = https.createServer({ cert: untrustedCert.cert, key: readFileSync(untrustedCert.keyPath) }, (_req, res) => res.end('never'))
  plain = http.createServer((_req, res) => res.end('never'))
  for (const server of [upstream, untrusted, plain]) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (upstream.address() as AddressInfo).port
  const portOf = (server: http.Server): number => (server.address() as AddressInfo).port
  // The gateway trusts the test certificate as a CA (it is verified against the system's roots otherwise).
  process.env.NODE_EXTRA_CA_CERTS = cert.certPath
  gw = await startGateway([
    'listen: [{ address: 127.0.0.1:0 }]',
    'admin: { address: 127.0.0.1:0 }',
    'upstreams:',
    `  by-name: { endpoints: [https://localhost:${port}] }`,
    `  by-ip: { endpoints: [https://127.0.0.1:${port}] }`,
    `  untrusted: { endpoints: [https://localhost:${portOf(untrusted)}] }`,
    `  plain: { endpoints: [https://localhost:${portOf(plain)}] }`,
    'routes:',
    '  - { name: untrusted, match: { pathPrefix: /untrusted/ }, upstream: untrusted }',
    '  - { name: plain, match: { pathPrefix: /plain/ }, upstream: plain }',
    '  - { name: by-name, match: { pathPrefix: /name/ }, upstream: by-name }',
    '  - { name: by-ip, match: { pathPrefix: /ip/ }, upstream: by-ip }'
  ].join('\n'))
  delete process.env.NODE_EXTRA_CA_CERTS
})

after(async () => {
  await gw?.stop()
  for (const server of [upstream, untrusted, plain]) {
    server?.closeAllConnections()
    await new Promise<void>((resolve) => server === undefined ? resolve() : server.close(() => resolve()))
  }
  cert?.remove()
  untrustedCert?.remove()
})

async function get (path: string, host: string | null): Promise<{ status: number, body: { host?: string, sni?: string | false }, requestId: string }> {
  const res = await request(`${gw.url}${path}`, { headers: host === null ? {} : { host } })
  const text = await res.body.text()
  assert.equal(res.statusCode, 200, text)
  return { status: res.statusCode, body: JSON.parse(text), requestId: String(res.headers['x-request-id']) }
}

test('a client Host header of another name: the certificate is checked against the endpoint, the Host goes through unchanged', async () => {
  const seen = await get('/name/x', 'api.example.com')
  assert.equal(seen.body.host, 'api.example.com')
  assert.equal(seen.body.sni, 'localhost')
  const line = await gw.accessLine(seen.requestId)
  assert.equal(line.outcome, 'ok')
  assert.equal(line.endpoint, `https://localhost:${(upstream.address() as AddressInfo).port}`)
})

test('requests with different Host headers share the endpoint\'s connection, whose SNI is the endpoint\'s name', async () => {
  const before = connections.length
  for (const host of ['a.example', 'b.example', null, 'a.example', 'c.example']) await get('/name/y', host)
  // Sequential requests: one pooled connection carries them all (the first test may have opened it).
  assert.ok(connections.length - before <= 1, `connections opened: ${connections.slice(before).join(', ')}`)
  assert.ok(connections.every((name) => name === 'localhost'), `SNI seen: ${connections.join(', ')}`)
})

test('an endpoint given by IP address sends no SNI and is checked against its address, whatever the Host header', async () => {
  const before = connections.length
  const seen = await get('/ip/z', 'api.example.com')
  assert.equal(seen.body.host, 'api.example.com')
  assert.equal(seen.body.sni, false)
  await get('/ip/z', 'other.example')
  assert.deepEqual(connections.slice(before), [false])
})

for (const [name, path, code] of [
  ['a certificate that does not verify', '/untrusted/a', 'DEPTH_ZERO_SELF_SIGNED_CERT'],
  ['https:// to a plain HTTP port', '/plain/a', 'ERR_SSL_']
] as const) {
  test(`${name}: upstream_unavailable (503) naming the TLS error, never a reset`, async () => {
    const res = await request(`${gw.url}${path}`)
    const body = await res.body.json() as { error: { code: string, message: string } }
    assert.equal(res.statusCode, 503)
    assert.equal(res.headers['x-longhaul-error'], 'upstream_unavailable')
    assert.equal(body.error.code, 'upstream_unavailable')
    assert.match(body.error.message, new RegExp(`TLS handshake failed: ${code}`))
    const line = await gw.accessLine(String(res.headers['x-request-id']))
    assert.equal(line.outcome, 'upstream_unavailable')
    assert.equal(line.status, 503)
  })
}
