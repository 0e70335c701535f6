// The container image, checked statically (no container engine runs in the tests): the base image
// is the Node release package.json pins, the build has stages, the runtime user is not root, the
// entry point is exec form (SIGTERM reaches node itself), the compile cache is primed and the image
// holds what the code imports.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { builtinModules } from 'node:module'
import { DockerfileParser } from 'dockerfile-ast'
import ts from 'typescript'

const root = join(import.meta.dirname, '..')
const dockerfile = DockerfileParser.parse(await readFile(join(root, 'Dockerfile'), 'utf8'))
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }
const instructions = dockerfile.getInstructions()
const froms = dockerfile.getFROMs()
const finalStageStart = froms.at(-1)!.getRange().start.line
const finalStage = instructions.filter((i) => i.getRange().start.line >= finalStageStart)

test('every stage starts from the Node release package.json pins, by exact version', () => {
  assert.ok(froms.length >= 2, 'a multi-stage build: dependencies are installed in a stage of their own')
  const pinned = pkg.dependencies.node
  assert.match(pinned ?? '', /^\d+\.\d+\.\d+$/, 'package.json pins an exact Node version')
  for (const from of froms) {
    assert.equal(from.getImageName(), 'node')
    const tag = from.getImageTag() ?? ''
    assert.ok(tag === pinned || tag.startsWith(`${pinned}-`), `FROM ${from.getImage()}: the tag must start with ${pinned}`)
  }
})

test('only production dependencies are installed, without install scripts', () => {
  const installs = instructions.filter((i) => i.getKeyword() === 'RUN' && /\bnpm (ci|install)\b/.test(i.getArgumentsContent() ?? ''))
  assert.equal(installs.length, 1)
  const args = installs[0]!.getArgumentsContent() ?? ''
  assert.match(args, /npm ci\b/, 'npm ci: exactly the lock file')
  assert.match(args, /--omit=dev/)
  assert.match(args, /--ignore-scripts/)
  assert.ok(installs[0]!.getRange().start.line < finalStageStart, 'installed in the build stage, copied into the runtime')
})

test('the runtime stage runs as a user that is not root, before the entry point', () => {
  const users = finalStage.filter((i) => i.getKeyword() === 'USER')
  assert.equal(users.length, 1)
  const user = users[0]!.getArgumentsContent()?.trim() ?? ''
  assert.ok(!['root', '0', '0:0'].includes(user), `USER ${user}`)
  const entry = finalStage.find((i) => i.getKeyword() === 'ENTRYPOINT')!
  assert.ok(users[0]!.getRange().start.line < entry.getRange().start.line)
})

test('the entry point is `longhaul serve` in exec form, so SIGTERM reaches node directly', async () => {
  const entries = dockerfile.getENTRYPOINTs()
  assert.equal(entries.length, 1)
  assert.notEqual(entries[0]!.getOpeningBracket(), null, 'exec form (JSON array), not shell form')
  const argv = entries[0]!.getJSONStrings().map((s) => s.getJSONValue())
  assert.deepEqual(argv, ['node', '--max-semi-space-size=8', 'src/cli.ts', 'serve'])
  assert.match(await readFile(join(root, 'src/cli.ts'), 'utf8'), /program\.command\('serve'\)/)
  assert.equal(dockerfile.getCMDs().length, 0, 'no CMD: `docker run IMAGE --config F` appends to serve')
})

test('the compile cache is primed at build time, as the runtime user, for serve, the config loader and the demo', async () => {
  const env = finalStage.filter((i) => i.getKeyword() === 'ENV').map((i) => i.getArgumentsContent() ?? '').join('\n')
  const dir = /NODE_COMPILE_CACHE=(\S+)/.exec(env)?.[1]
  assert.ok(dir !== undefined, 'ENV NODE_COMPILE_CACHE in the runtime stage')
  const user = finalStage.find((i) => i.getKeyword() === 'USER')!
  const runs = finalStage.filter((i) => i.getKeyword() === 'RUN')
  // Node names the cache's directory after the UID: primed by another user, it would not be read.
  const priming = runs.filter((r) => /(^|&& )node /.test((r.getArgumentsContent() ?? '').trim()))
  assert.equal(priming.length, 1)
  assert.ok(priming[0]!.getRange().start.line > user.getRange().start.line, 'primed after USER, as the user that runs the gateway')
  const owner = runs.find((r) => (r.getArgumentsContent() ?? '').includes('chown'))
  assert.ok(owner !== undefined && owner.getRange().start.line < user.getRange().start.line, 'the cache directory is made the runtime user\'s before USER')
  assert.match(owner.getArgumentsContent() ?? '', new RegExp(`chown ${user.getArgumentsContent()!.trim()} \\S*${dir.split('/').at(-1)!.replace('.', '\\.')}`))
  const prime = priming[0]!.getArgumentsContent() ?? ''
  // What serve loads, with the entry point's flags (V8 keeps a code cache per flag set).
  const entry = dockerfile.getENTRYPOINTs()[0]!.getJSONStrings().map((j) => j.getJSONValue())
  assert.ok(prime.includes(`${entry.slice(0, -1).join(' ')} serve --print-config`), prime)
  assert.match(prime, /node src\/cli\.ts check --demo/, 'the config loader\'s modules (it runs without flags)')
  assert.match(prime, /node src\/config\/loader-child\.ts/)
  // What serve imports only when used: the embedded demo (the image runs it without arguments) and a worker pool.
  for (const module of ['demo/upstream', 'lifecycle/primary', 'lifecycle/worker']) assert.ok(prime.includes(`'${module}'`), `${module} primed`)
  const cli = await readFile(join(root, 'src/cli.ts'), 'utf8')
  const lazy = [...cli.matchAll(/await import\('\.\/([\w/-]+)\.ts'\)/g)].map((m) => m[1]!).filter((m) => !/^(doctor|deploy|probe|observe\/headroom-command|config\/load)\b/.test(m))
  assert.deepEqual([...new Set(lazy)].sort(), ['demo/upstream', 'lifecycle/primary', 'lifecycle/worker'], 'every module serve imports lazily is primed')
})

test('HEALTHCHECK is off by choice: Kubernetes probes the admin endpoints', () => {
  const checks = dockerfile.getHEALTHCHECKs()
  assert.equal(checks.length, 1)
  assert.equal(checks[0]!.getArgumentsContent()?.trim(), 'NONE')
})

test('the build context (.dockerignore) holds what the COPY lines take and nothing else', async () => {
  const lines = (await readFile(join(root, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  assert.equal(lines[0], '*', 'everything is excluded first (node_modules, .git, tests, local configs)')
  const allowed = lines.slice(1).map((l) => { assert.ok(l.startsWith('!'), l); return l.slice(1).replace(/\/$/, '') })
  const sources = dockerfile.getCOPYs()
    .filter((c) => c.getFlags().every((f) => f.getName() !== 'from'))
    .flatMap((c) => c.getArguments().slice(0, -1).map((a) => a.getValue().replace(/\/$/, '')))
  assert.deepEqual([...new Set(sources)].sort(), [...allowed].sort())
})

test('the code in the image imports only production dependencies and Node built-ins', async () => {
  const files = (await readdir(join(root, 'src'), { recursive: true })).filter((f) => f.endsWith('.ts'))
  const builtins = new Set(builtinModules)
  const missing: string[] = []
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(await readFile(join(root, 'src', file), 'utf8'), true, true)
    for (const { fileName } of importedFiles) {
      if (fileName.startsWith('.') || fileName.startsWith('node:') || builtins.has(fileName)) continue
      const name = fileName.startsWith('@') ? fileName.split('/').slice(0, 2).join('/') : fileName.split('/')[0]!
      if (pkg.dependencies[name] === undefined) missing.push(`src/${file}: ${fileName}`)
    }
  }
  assert.deepEqual(missing, [], 'imported at run time but not a production dependency (the image omits dev dependencies)')
})
