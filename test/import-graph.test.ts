// The shape of src/ as its imports draw it: no file imports one that imports it back (directly or
// around a longer loop), and no arrow points back up: config/ is read by the rest and reads none of
// it, upstream/ knows nothing of gateway/, and the data plane (config/, gateway/, upstream/) does
// not own the control plane (admin/, lifecycle/, the CLI).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import ts from 'typescript'
import { ROOT } from './helpers/gateway.ts'

const SRC = join(ROOT, 'src')

/** Every .ts file of src/ → the src/ files it imports (static, re-exported, type-only or dynamic). */
function importGraph (): Map<string, Set<string>> {
  const files = readdirSync(SRC, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => join(SRC, f))
  const graph = new Map<string, Set<string>>()
  for (const file of files) {
    const targets = new Set<string>()
    const add = (specifier: ts.Node | undefined): void => {
      if (specifier !== undefined && ts.isStringLiteral(specifier) && specifier.text.startsWith('.')) targets.add(resolve(dirname(file), specifier.text))
    }
    const visit = (node: ts.Node): void => {
      if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier)
      else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0])
      ts.forEachChild(node, visit)
    }
    visit(ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest))
    graph.set(file, targets)
  }
  // Imports of files outside src/ (package.json) are not part of its shape.
  for (const targets of graph.values()) for (const t of targets) if (!graph.has(t)) targets.delete(t)
  return graph
}

/** The import cycles: strongly connected components of more than one file, or a file importing itself (Tarjan). */
function cycles (graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const found: string[][] = []
  const connect = (v: string): void => {
    index.set(v, next)
    low.set(v, next++)
    stack.push(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (stack.includes(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!))
      }
    }
    if (low.get(v) !== index.get(v)) return
    const component: string[] = []
    let w: string
    do {
      w = stack.pop()!
      component.push(w)
    } while (w !== v)
    if (component.length > 1 || graph.get(v)?.has(v) === true) found.push(component.reverse())
  }
  for (const v of graph.keys()) if (!index.has(v)) connect(v)
  return found
}

test('the cycle finder finds a loop of two, a longer loop and a self-import, and nothing in a tree', () => {
  const g = (edges: Record<string, string[]>): Map<string, Set<string>> => new Map(Object.entries(edges).map(([k, v]) => [k, new Set(v)]))
  assert.deepEqual(cycles(g({ a: ['b'], b: ['a'], c: ['a'] })), [['a', 'b']])
  assert.deepEqual(cycles(g({ a: ['b'], b: ['c'], c: ['a'] })), [['a', 'b', 'c']])
  assert.deepEqual(cycles(g({ a: ['a'], b: [] })), [['a']])
  assert.deepEqual(cycles(g({ a: ['b', 'c'], b: ['c'], c: [] })), [])
})

test('no file of src/ imports one that imports it back', () => {
  const graph = importGraph()
  assert.ok(graph.size > 50, `only ${graph.size} files read under src/`)
  const edges = [...graph.values()].reduce((n, targets) => n + targets.size, 0)
  assert.ok(edges > graph.size, `only ${edges} imports read`)
  const loops = cycles(graph).map((c) => c.map((f) => relative(SRC, f)).join(' → '))
  assert.deepEqual(loops, [])
})

test('no arrow back up: config/ reads nothing of the rest, upstream/ nothing of gateway/, the data plane nothing of the control plane', () => {
  const forbidden: Array<{ from: string, to: RegExp, why: string }> = [
    { from: 'config/', to: /^(gateway|upstream|observe|lifecycle|admin|doctor|probe|deploy|demo)\/|^cli\.ts$/, why: 'config is read by the rest' },
    { from: 'upstream/', to: /^gateway\//, why: 'the upstream side knows nothing of the request path above it' },
    { from: 'gateway/', to: /^(admin|lifecycle)\/|^cli\.ts$/, why: 'the data plane does not own the control plane' },
    { from: 'upstream/', to: /^(admin|lifecycle)\/|^cli\.ts$/, why: 'the data plane does not own the control plane' }
  ]
  const wrong: string[] = []
  for (const [file, targets] of importGraph()) {
    const from = relative(SRC, file)
    for (const target of targets) {
      const to = relative(SRC, target)
      for (const rule of forbidden) if (from.startsWith(rule.from) && rule.to.test(to)) wrong.push(`${from} imports ${to}: ${rule.why}`)
    }
  }
  assert.deepEqual(wrong, [])
})
