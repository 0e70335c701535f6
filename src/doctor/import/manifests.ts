// Kubernetes manifests read with positions: every document of every YAML or JSON file, so each
// imported value can say FILE:LINE.
import { readFile } from 'node:fs/promises'
import { LineCounter, parseAllDocuments } from 'yaml'
import { Locator } from '../../config/locate.ts'
import type { ConfigPath } from '../../config/diagnostics.ts'
import { ImportError } from './types.ts'

export interface Resource {
  readonly kind: string
  readonly apiVersion: string
  readonly name: string
  readonly body: any
  readonly file: string
  readonly locator: Locator
}

/** FILE:LINE of a node in a resource (of the deepest node that exists on the path). */
export function at (r: Resource, path: ConfigPath): string {
  return `${r.file}:${r.locator.at(path).line}`
}

/** Every Kubernetes object in a YAML (or JSON) text; other documents are skipped. */
export function manifestsIn (text: string, file: string): Resource[] {
  const lines = new LineCounter()
  const out: Resource[] = []
  for (const doc of parseAllDocuments(text, { lineCounter: lines, prettyErrors: false })) {
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!
      throw new ImportError(`${file}:${lines.linePos(e.pos[0]).line}`, e.message.split('\n')[0]!)
    }
    const body: any = doc.toJS()
    const items: Array<{ body: any, path: ConfigPath }> = body?.kind === 'List' && Array.isArray(body.items)
      ? body.items.map((item: unknown, i: number) => ({ body: item, path: ['items', i] }))
      : [{ body, path: [] }]
    for (const item of items) {
      if (typeof item.body?.kind !== 'string' || typeof item.body?.apiVersion !== 'string') continue
      const locator = new Locator(doc, lines)
      const prefixed = item.path.length === 0 ? locator : { at: (p: ConfigPath, o?: { key?: boolean }) => locator.at([...item.path, ...p], o) } as unknown as Locator
      out.push({ kind: item.body.kind, apiVersion: item.body.apiVersion, name: String(item.body.metadata?.name ?? ''), body: item.body, file, locator: prefixed })
    }
  }
  return out
}

export async function readManifests (file: string): Promise<Resource[]> {
  return manifestsIn(await readFile(file, 'utf8'), file)
}
