// Maps a config path to the line and column of the YAML node it names.
import { isMap, isSeq, isPair, isScalar, LineCounter, type Document, type Node } from 'yaml'
import type { ConfigPath } from './diagnostics.ts'

export interface Position { line: number, col: number }

export class Locator {
  readonly #doc: Document
  readonly #lines: LineCounter
  constructor (doc: Document, lines: LineCounter) {
    this.#doc = doc
    this.#lines = lines
  }

  /**
   * The position of the node at `path`; with `key: true`, of the key that names it (an unknown
   * key is reported at itself). A path that goes past what the file holds (a missing key) stops
   * at the deepest node that exists: the map the key is missing from.
   */
  at (path: ConfigPath, { key = false } = {}): Position {
    let node: unknown = this.#doc.contents
    let position: number = this.#offset(node) ?? 0
    for (let i = 0; i < path.length; i++) {
      const segment = path[i]
      const last = i === path.length - 1
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(segment))
        if (pair === undefined) break
        if (last && key) { position = this.#offset(pair.key) ?? position; break }
        node = pair.value
        position = this.#offset(node) ?? this.#offset(pair.key) ?? position
      } else if (isSeq(node) && typeof segment === 'number') {
        const item = node.items[segment]
        if (item === undefined) break
        node = item
        position = this.#offset(node) ?? position
      } else break
    }
    const { line, col } = this.#lines.linePos(position)
    return { line, col }
  }

  /** The path of the deepest key or list item whose text holds this offset (for syntax errors). */
  pathAt (offset: number): ConfigPath {
    const path: Array<string | number> = []
    const holds = (start: number | undefined, end: number | undefined): boolean => start !== undefined && end !== undefined && start <= offset && offset < end
    let node: unknown = this.#doc.contents
    for (;;) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && holds(this.#offset(p.key), this.#end(p.value) ?? this.#end(p.key)))
        if (pair === undefined) break
        path.push(String((pair.key as { value: unknown }).value))
        node = pair.value
      } else if (isSeq(node)) {
        const index = node.items.findIndex((item) => holds(this.#offset(item), this.#end(item)))
        if (index < 0) break
        path.push(index)
        node = node.items[index]
      } else break
    }
    return path
  }

  #end (node: unknown): number | undefined {
    const range = (node as Node | null | undefined)?.range
    return range === undefined || range === null ? undefined : range[2]
  }

  #offset (node: unknown): number | undefined {
    const range = (node as Node | null | undefined)?.range
    return range === undefined || range === null ? undefined : range[0]
  }
}
