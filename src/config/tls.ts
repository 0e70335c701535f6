// TLS files of a listener (listen[].tls): paths are relative to the config file, so a config
// and its certificates move together (a Kubernetes Secret mounted next to the ConfigMap).
// `check` reads and pairs them, so a wrong path or a key that does not match its certificate is
// a config error at the key, not a listener that fails at start.
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { createSecureContext } from 'node:tls'

/** Absolute paths of a listener's PEM files. */
export interface TlsFiles {
  readonly cert: string
  readonly key: string
}

export function resolveTlsFiles (configPath: string, tls: { cert: string, key: string }): TlsFiles {
  const base = dirname(resolve(configPath))
  return { cert: resolve(base, tls.cert), key: resolve(base, tls.key) }
}

export interface TlsMaterial {
  readonly cert: Buffer
  readonly key: Buffer
}

/** Reads the files; throws with the file named when one cannot be read. */
export function readTlsFiles (files: TlsFiles): TlsMaterial {
  const read = (what: 'cert' | 'key'): Buffer => {
    try {
      return readFileSync(files[what])
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      throw new TlsFileError(what, `cannot read ${files[what]}: ${code === 'ENOENT' ? 'file not found' : (err as Error).message}`)
    }
  }
  return { cert: read('cert'), key: read('key') }
}

export class TlsFileError extends Error {
  /** Which key is at fault: 'cert', 'key', or null for the pair. */
  readonly which: 'cert' | 'key' | null
  constructor (which: 'cert' | 'key' | null, message: string) {
    super(message)
    this.which = which
  }
}

/** Reads and checks the pair the way the listener will use it; throws TlsFileError. */
export function checkTlsFiles (files: TlsFiles): TlsMaterial {
  const material = readTlsFiles(files)
  try {
    createSecureContext({ cert: material.cert, key: material.key })
  } catch (err) {
    // OpenSSL's reasons: "key values mismatch", "no start line" (not PEM), a bad password.
    throw new TlsFileError(null, `the certificate and key cannot be used together: ${(err as Error).message}`)
  }
  return material
}
