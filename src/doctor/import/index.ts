// `from:` and `--from`: which importer reads a file, by its name and content. Kubernetes manifests
// (every YAML or JSON document with apiVersion and kind, a directory's files together), nginx.conf,
// HAProxy cfg, an Envoy bootstrap or config dump.
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { manifestsIn, type Resource } from './manifests.ts'
import { importKubernetes } from './kubernetes.ts'
import { importNginx } from './nginx.ts'
import { importHaproxy } from './haproxy.ts'
import { importEnvoy, isEnvoyConfig } from './envoy.ts'
import { ImportError, type Imported } from './types.ts'

export interface ImportOptions {
  /** The request path, to pick the route, location or rule the request takes. */
  readonly path?: string
}

type Kind = 'manifest' | 'nginx' | 'haproxy' | 'envoy'

async function filesUnder (path: string): Promise<string[]> {
  let info
  try {
    info = await stat(path)
  } catch {
    throw new ImportError(path, 'file not found')
  }
  if (!info.isDirectory()) return [path]
  const names = (await readdir(path, { recursive: true })).map(String).sort()
  return names.filter((n) => /\.(ya?ml|json|conf|cfg)$/.test(n)).map((n) => join(path, n))
}

function kindOf (file: string, text: string): Kind | null {
  // YAML and JSON first: a ConfigMap may carry an nginx or HAProxy config as text.
  if (/\.(ya?ml|json)$/.test(file)) {
    if (/^\s*"?apiVersion"?\s*:/m.test(text) && /^\s*"?kind"?\s*:/m.test(text)) return 'manifest'
    if (isEnvoyConfig(text)) return 'envoy'
    return null
  }
  if (/\.cfg$/.test(file) || /^(frontend|backend|listen)[ \t]+\S+|^defaults\b/m.test(text)) return 'haproxy'
  if (/\.conf$/.test(file) || /^\s*(http|events|server)\s*\{/m.test(text)) return 'nginx'
  return null
}

/** The hops the files describe, in the order the paths are given (a directory's manifests read together). */
export async function importFrom (paths: readonly string[], options: ImportOptions = {}): Promise<Imported> {
  const out: Imported = { hops: [], deploy: null }
  const hops = [...out.hops]
  let deploy = out.deploy
  for (const path of paths) {
    const manifests: Resource[] = []
    for (const file of await filesUnder(path)) {
      const text = await readFile(file, 'utf8')
      const kind = kindOf(file, text)
      let part: Imported | null = null
      if (kind === 'manifest') manifests.push(...manifestsIn(text, file))
      else if (kind === 'nginx') part = await importNginx(file, options)
      else if (kind === 'haproxy') part = importHaproxy(text, file)
      else if (kind === 'envoy') part = importEnvoy(text, file, options)
      else if (!/\.(ya?ml|json)$/.test(file) || path === file) throw new ImportError(file, 'not a file the doctor reads: Kubernetes manifests, nginx.conf, HAProxy cfg, an Envoy bootstrap or config dump')
      if (part !== null) { hops.push(...part.hops); deploy = part.deploy ?? deploy }
    }
    if (manifests.length > 0) {
      const part = importKubernetes(manifests, options)
      hops.push(...part.hops)
      deploy = part.deploy ?? deploy
    }
  }
  return { hops, deploy }
}
