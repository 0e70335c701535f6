// A throwaway certificate for tests, made with openssl at test time (no key material is kept in
// the repository): EC P-256, valid one day, for localhost and 127.0.0.1.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface TestCertificate {
  dir: string
  certPath: string
  keyPath: string
  /** The certificate, to trust it as a CA in clients. */
  cert: Buffer
  remove: () => void
}

export function makeTestCertificate (): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'longhaul-tls-'))
  const certPath = join(dir, 'cert.pem')
  const keyPath = join(dir, 'key.pem')
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'
  ], { stdio: 'ignore' })
  return { dir, certPath, keyPath, cert: readFileSync(certPath), remove: () => rmSync(dir, { recursive: true, force: true }) }
}
