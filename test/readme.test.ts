// The README, run as written: its install step, its "Try it" commands against the embedded demo
// (with what each prints), and every config block through `longhaul check`.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { copyFile, mkdir, writeFile } from 'node:fs/promises'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { parse } from 'yaml'
import { ROOT, runCli, startGateway, writeConfig } from './helpers/gateway.ts'
import { makeTestCertificate } from './helpers/tls.ts'

const README = readFileSync(join(ROOT, 'README.md'), 'utf8')
const SYSTEM_PATH = '/usr/bin:/bin'

interface Block { lang: string, line: number, text: string }

function fencedBlocks (): Block[] {
  const blocks: Block[] = []
  const re = /^```(\w*)\n([\s\S]*?)^```$/gm
  for (let m = re.exec(README); m !== null; m = re.exec(README)) {
    blocks.push({ lang: m[1]!, line: README.slice(0, m.index).split('\n').length, text: m[2]! })
  }
  return blocks
}

function sh (script: string, options: { cwd?: string, path?: string, timeoutMs?: number } = {}): Promise<{ code: number, output: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', `{
${script}
} 2>&1`], {
      cwd: options.cwd ?? ROOT,
      env: { PATH: options.path ?? SYSTEM_PATH, HOME: process.env.HOME ?? '/root' },
      timeout: options.timeoutMs ?? 20_000
    }, (err, stdout) => {
      resolve({ code: err === null ? 0 : Number((err as { code?: number }).code), output: stdout })
    })
  })
}

/**
 * `#   ` lines under a command are what it prints, in order; `…` stands for anything, and a
 * `←` starts a remark. Each must be found in the output after the previous one.
 */
function assertPrints (output: string, expected: string[], command: string): void {
  const lines = output.split(/\r\n|\r|\n/)
  let at = 0
  for (const want of expected) {
    if (want === '…') continue
    const pattern = new RegExp(want.split('…').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*'))
    const found = lines.findIndex((line, i) => i >= at && pattern.test(line))
    assert.ok(found >= 0, `${command}\ndid not print (in order): ${want}\n--- output ---\n${output.slice(-3000)}`)
    at = found + 1
  }
}

test('the install step: bin/ on PATH, then `longhaul` by name prints what the README says', async () => {
  const block = fencedBlocks().find((b) => b.text.includes('export PATH="$PWD/bin:$PATH"'))
  assert.ok(block !== undefined, 'README: the install block')
  const expected = /^longhaul check --demo\s+# (.*)$/m.exec(block.text)?.[1]
  assert.ok(expected !== undefined)
  const run = await sh(block.text)
  assert.equal(run.code, 0, run.output)
  assert.equal(run.output.trim(), expected)
})

test('npx longhaul on the system\'s npm prints no engine warning', { skip: existsSync('/usr/bin/npx') ? false : 'no system npx' }, async () => {
  const run = await sh('npx longhaul --help')
  assert.equal(run.code, 0, run.output)
  assert.match(run.output, /^Usage: longhaul/m)
  assert.doesNotMatch(run.output, /EBADENGINE|npm warn/i)
})

test('serve --print-config prints the embedded demo\'s config; it passes check, as does check --demo', async () => {
  const { path } = await writeConfig('')
  // Independent runs side by side: each CLI start is slow on a loaded machine.
  const [printed, demo, both] = await Promise.all([
    runCli(['serve', '--print-config']),
    runCli(['check', '--demo', '--explain', 'messages']),
    runCli(['serve', '--print-config', '--config', path])
  ])
  assert.equal(printed.code, 0, printed.stderr)
  assert.match(printed.stdout, /endpoints: \[http:\/\/127\.0\.0\.1:8000\]/)
  await writeFile(path, printed.stdout)
  const checked = await runCli(['check', '--config', path])
  assert.equal(checked.code, 0, checked.stderr)
  assert.equal(checked.stdout, `${path}: valid (3 routes, 1 upstreams, 0 warnings)\n`)
  assert.equal(checked.stderr, '')
  assert.equal(demo.code, 0, demo.stderr)
  assert.match(demo.stdout, /^route messages → upstream demo\nlimit .*\nfirstByte\s+30s\s+route\s+first_byte_timeout$/m)
  assert.equal(both.code, 2)
  assert.match(both.stderr, /--print-config prints the embedded demo's config/)
})

test('every longhaul config block in the README passes check without a warning, and --explain prints what the README shows', async () => {
  const yamlBlocks = fencedBlocks().filter((b) => b.lang === 'yaml')
  const configs: Block[] = []
  for (const block of yamlBlocks) {
    const keys = Object.keys(parse(block.text) as object)
    if (keys.includes('routes')) configs.push(block)
    else if (keys.includes('hops')) continue // a doctor chain file: test/doctor-examples.test.ts
    else if (keys.includes('readinessProbe')) continue // a fragment of a Kubernetes pod spec
    else assert.fail(`README.md:${block.line}: a yaml block this test does not know (${keys.join(', ')}): check it or name it here`)
  }
  assert.ok(configs.length >= 1)
  const cert = makeTestCertificate()
  after(() => cert.remove())
  for (const block of configs) {
    const { path, dir } = await writeConfig(block.text)
    // The TLS listener's files, where the block says they are (relative to the config file).
    for (const [file, from] of [['tls/cert.pem', cert.certPath], ['tls/key.pem', cert.keyPath]] as const) {
      if (!block.text.includes(file)) continue
      await mkdir(dirname(join(dir, file)), { recursive: true })
      await copyFile(from, join(dir, file))
    }
    const shown = /^\$ longhaul check --config longhaul\.yaml --explain (\w+)\n([\s\S]*?)^```$/m.exec(README)
    const explains = shown !== null && block.text.includes(`name: ${shown[1]!}`)
    const [checked, explained] = await Promise.all([
      runCli(['check', '--config', path]),
      explains ? runCli(['check', '--config', path, '--explain', shown[1]!]) : null
    ])
    assert.equal(checked.code, 0, `README.md:${block.line}: ${checked.stderr}`)
    assert.equal(checked.stderr, '', `README.md:${block.line}: warnings`)
    if (explained !== null) assert.equal(explained.stdout, shown![2])
  }
})

test('the check example: the file shown, checked, prints the errors shown', async () => {
  const example = /^\$ cat longhaul\.yaml\n([\s\S]*?)^\$ (longhaul check --config longhaul\.yaml; echo "exit \$\?")\n([\s\S]*?)^```$/m.exec(README)
  assert.ok(example !== null, 'README: the check example')
  const { dir } = await writeConfig(example[1]!)
  const run = await sh(`PATH="${join(ROOT, 'bin')}:$PATH"; ${example[2]!}`, { cwd: dir })
  assert.equal(run.output, example[3])
})

test('the "Try it" commands print what the README says, against the embedded demo', async () => {
  const gw = await startGateway(null, { args: ['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'] })
  after(() => gw.stop())
  const section = README.slice(README.indexOf('## Try it'))
  const block = /```sh\n([\s\S]*?)```/.exec(section)![1]!
  // Each command with the output lines under it; run against this gateway's own ports.
  const commands: Array<{ command: string, expected: string[] }> = []
  for (const line of block.split('\n')) {
    if (line.startsWith('#   ')) commands.at(-1)!.expected.push(line.slice(4).replace(/\s*←.*$/, ''))
    else if (line !== '' && !line.startsWith('#')) commands.push({ command: line, expected: [] })
  }
  assert.ok(commands.length >= 6)
  const admin = gw.adminUrl.replace('http://', '')
  const listener = gw.addresses[0]!
  await Promise.all(commands.map(async ({ command, expected }) => {
    assert.ok(expected.length > 0, `README "Try it": no output shown for ${command}`)
    const run = await sh(command.replaceAll('localhost:8080', listener).replaceAll('localhost:9901', admin))
    assertPrints(run.output, expected, command)
  }))
})

/** Output as the README shows it: a line `…` stands for any lines, `…` in a line for any text. */
function assertShown (output: string, shown: string, what: string): void {
  const pattern = shown.split('\n').map((line) => line === '…'
    ? '(?:[^\\n]*\\n)*?'
    : `${line.split('…').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[^\\n]*?')}\\n`).join('')
  assert.match(output, new RegExp(`^${pattern.replace(/\\n$/, '')}\\n?$`), `${what}: the README shows other output; it printed:\n${output}`)
}

test('the README\'s doctor runs print what it shows', async () => {
  const runs = [...README.matchAll(/^```\n\$ (longhaul doctor [^\n]*)\n([\s\S]*?)^```$/gm)]
  assert.ok(runs.length >= 2)
  await Promise.all(runs.map(async ([, command, shown]) => {
    const run = await sh(`PATH="${join(ROOT, 'bin')}:$PATH"; ${command!}`, { timeoutMs: 30_000 })
    assertShown(run.output, shown!, command!)
  }))
})

test('examples/chains holds only chains: `longhaul doctor examples/chains/*.yaml` reports on each', async () => {
  const run = await sh('bin/longhaul doctor examples/chains/*.yaml', { timeoutMs: 30_000 })
  const chains = readdirSync(join(ROOT, 'examples', 'chains')).filter((f) => f.endsWith('.yaml')).sort()
  assert.ok(chains.length >= 6)
  const reported = [...run.output.matchAll(/^longhaul doctor: (\S+)$/gm)].map((m) => m[1])
  assert.deepEqual(reported, chains.map((f) => `examples/chains/${f}`), run.output.slice(0, 2000))
  assert.equal(run.code, 1) // the stories have error findings; the clean chain alone has none
  const clean = await sh('bin/longhaul doctor examples/chains/clean-chat.yaml examples/chains/story-1-chat-cut-at-30s.yaml --format json')
  const reports = JSON.parse(clean.output) as Array<{ file: string, ok: boolean }>
  assert.deepEqual(reports.map((r) => [r.file, r.ok]), [['examples/chains/clean-chat.yaml', true], ['examples/chains/story-1-chat-cut-at-30s.yaml', false]])
  assert.equal(clean.code, 1)
  const html = await sh('bin/longhaul doctor examples/chains/clean-chat.yaml examples/chains/story-1-chat-cut-at-30s.yaml --format html')
  assert.equal(html.code, 2)
  assert.match(html.output, /--format html is one page per chain/)
})
