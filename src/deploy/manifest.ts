// One rendered Kubernetes object: the object, the file it goes to, and the comments that say why
// a value is what it is (written above the key they explain).
import { Document, isMap, isScalar, type Scalar } from 'yaml'

export interface Manifest {
  /** File name under --out. */
  readonly file: string
  readonly object: Record<string, unknown>
  /** Written above the document. */
  readonly header?: string
  /** Key path → comment written above that key. */
  readonly comments?: ReadonlyArray<readonly [path: readonly string[], text: string]>
}

export function manifestYaml (manifest: Manifest): string {
  const doc = new Document(manifest.object)
  if (manifest.header !== undefined) doc.commentBefore = prefixLines(manifest.header)
  for (const [path, text] of manifest.comments ?? []) {
    const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1))
    const pair = isMap(parent) ? parent.items.find((p) => isScalar(p.key) && p.key.value === path.at(-1)) : undefined
    // A comment on a key that is not there is a bug in the renderer, never something to skip quietly.
    if (pair === undefined) throw new Error(`render: no key ${path.join('.')} in ${manifest.file} to comment`)
    ;(pair.key as Scalar).commentBefore = prefixLines(text)
  }
  return doc.toString({ lineWidth: 0 })
}

/** yaml writes `#` + the text: a leading space per line reads better. */
function prefixLines (text: string): string {
  return text.split('\n').map((line) => ` ${line}`).join('\n')
}
