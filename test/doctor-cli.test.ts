// `longhaul doctor` as a command, through the real CLI entry (src/cli.ts):
// exit codes, FILE:LINE:COL errors for a bad chain file, the three formats, --presets, and the
// HTML page rendered by headless Chromium (skipped with a reason when Chromium is absent; CI
// installs it in .ci/run).
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT } from './helpers/gateway.ts'

const MAIN = join(ROOT, 'src', 'cli.ts')
const CHAINS = join(ROOT, 'examples', 'chains')
const dirs: string[] = []
after(async () => { await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))) })

async function tempDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'longhaul-doctor-'))
  dirs.push(dir)
  return dir
}

function doctor (...args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, 'doctor', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('exit', (code) => resolve({ code, stdout, stderr }))
  })
}

/** Writes a chain file (line 1 is the first line of `text`) and runs the doctor on it. */
async function doctorOn (text: string, ...args: string[]): Promise<{ code: number | null, stdout: string, stderr: string, file: string }> {
  const file = join(await tempDir(), 'chain.yaml')
  await writeFile(file, text)
  return { ...(await doctor(file, ...args)), file }
}

test('exit 1 and the findings, most severe first, when a finding is an error; exit 0 on the clean chain', async () => {
  const [bad, clean] = await Promise.all([
    doctor(join(CHAINS, 'story-1-chat-cut-at-30s.yaml')),
    doctor(join(CHAINS, 'clean-chat.yaml'))
  ])
  assert.equal(bad.code, 1, bad.stderr)
  assert.match(bad.stdout, /the request is first cut at 30s by gke-gateway \(total-cut\)/)
  const severities = [...bad.stdout.matchAll(/^(ERROR|WARNING|INFO) +(\S+)/gm)].map((m) => m[1])
  assert.deepEqual(severities, ['ERROR', 'ERROR', 'WARNING', 'INFO'])
  assert.match(bad.stdout, /^gke-gateway \(gcp-external-alb\)\n {2}requestTimeout +30s +preset gcp-external-alb: backend service timeoutSec$/m)
  assert.equal(clean.code, 0, clean.stdout + clean.stderr)
  assert.match(clean.stdout, /no findings/)
  assert.match(clean.stdout, /streamIdleTimeout +90s +config \.\.\/longhaul\.yaml: routes\[0\] \(chat\)\.timeouts\.streamIdle \[route\]/)
})

test('--format json: findings with rule, severity, hops, values, symptom and fix', async () => {
  const r = await doctor(join(CHAINS, 'story-3-write-timeout.yaml'), '--format', 'json')
  assert.equal(r.code, 1)
  const report = JSON.parse(r.stdout)
  assert.equal(report.ok, false)
  const f = report.findings[0]
  assert.deepEqual(Object.keys(f).slice(0, 6), ['rule', 'severity', 'hops', 'problem', 'values', 'symptom'])
  assert.equal(f.rule, 'write-timeout')
  assert.equal(f.values['service.writeTimeout'].ms, 60_000)
  assert.equal(typeof f.fix, 'string')
  assert.equal(report.hops[1].values.writeTimeout.origin, 'set')
})

test('an invalid chain file: exit 1 and FILE:LINE:COL path: message for each problem, with did-you-mean', async () => {
  const r = await doctorOn(`workload:
  duration: 5m
  streaming: true
  maxSilence: 40
hops:
  - name: client
    preset: curl
    sett: { requestTimeout: 5m }
  - name: app
    preset: uvicron
    set: { requestTimout: 5m, heartbeat: 15 }
  - name: gw
    preset: longhaul
    config: ./missing.yaml
deploy: { hop: apps }
`)
  assert.equal(r.code, 1, r.stdout)
  assert.equal(r.stdout, '')
  const lines = r.stderr.trim().split('\n')
  assert.ok(lines.includes(`${r.file}:4:15 workload.maxSilence: a bare number is not a duration: write a number with a unit, e.g. '40s'`), r.stderr)
  assert.ok(lines.includes(`${r.file}:8:5 hops[0].sett: unknown key 'sett' (did you mean 'set'?)`), r.stderr)
  assert.ok(lines.includes(`${r.file}:11:42 hops[1].set.heartbeat: a bare number is not a duration: write 'none' or a number with a unit, e.g. '15s'`), r.stderr)
  // Schema errors come first; a file that passes the schema gets the checks that need presets and configs.
  const second = await doctorOn(`workload: { duration: 5m }
hops:
  - name: client
    preset: curl
  - name: app
    preset: uvicron
    set: { requestTimout: 5m }
  - name: gw
    preset: longhaul
    config: ./missing.yaml
deploy: { hop: apps }
`)
  const more = second.stderr.trim().split('\n')
  assert.ok(more.includes(`${second.file}:6:13 hops[1].preset: unknown preset 'uvicron' (did you mean 'uvicorn'?); \`longhaul doctor --presets\` lists them`), second.stderr)
  assert.ok(more.includes(`${second.file}:7:12 hops[1].set.requestTimout: unknown property 'requestTimout' (did you mean 'requestTimeout'?)`), second.stderr)
  assert.ok(more.includes(`${second.file}:10:13 hops[2].config: cannot read ./missing.yaml: file not found`), second.stderr)
  assert.ok(more.includes(`${second.file}:11:16 deploy.hop: unknown hop 'apps' (did you mean 'app'?)`), second.stderr)
})

test('errors in a longhaul hop\'s config file are reported at their own FILE:LINE:COL', async () => {
  const dir = await tempDir()
  await writeFile(join(dir, 'longhaul.yaml'), 'upstreams:\n  app: { endpoints: [http://127.0.0.1:8000] }\nroutes:\n  - name: chat\n    upstream: app\n    timeouts: { streamIdel: 90s }\n')
  await writeFile(join(dir, 'chain.yaml'), 'workload: { duration: 1m }\nhops:\n  - { name: client, preset: curl }\n  - { name: gw, preset: longhaul, config: longhaul.yaml, route: chat }\n')
  const r = await doctor(join(dir, 'chain.yaml'))
  assert.equal(r.code, 1)
  assert.match(r.stderr, new RegExp(`^${join(dir, 'longhaul.yaml').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6:17 routes\\[0\\]\\.timeouts\\.streamIdel: unknown key 'streamIdel' \\(did you mean 'streamIdle'\\?\\)$`, 'm'))
})

test('usage errors exit 2', async () => {
  const results = await Promise.all([doctor(), doctor(join(CHAINS, 'clean-chat.yaml'), '--format', 'pdf'), doctor(join(CHAINS, 'clean-chat.yaml'), '--presets')])
  assert.deepEqual(results.map((r) => r.code), [2, 2, 2])
  assert.match(results[0]!.stderr, /doctor needs a chain file/)
})

test('--presets lists every preset with its values and sources, and says which are unconfirmed', async () => {
  const [text, json] = await Promise.all([doctor('--presets'), doctor('--presets', '--format', 'json')])
  assert.equal(text.code, 0)
  assert.match(text.stdout, /^44 presets, \d+ values \(\d+ confirmed; UNCONFIRMED = one source, not re-read\)/)
  assert.match(text.stdout, /node-http-server: Node\.js http\.Server, Node 24 LTS/)
  assert.match(text.stdout, /requestTimeout +none +fetch\(\)\/XHR total \(none in the Fetch standard\) \[UNCONFIRMED\]/)
  const parsed = JSON.parse(json.stdout)
  assert.equal(parsed.presets.length, 44)
  assert.ok(parsed.confirmed < parsed.values)
})

function chromium (): string | null {
  for (const name of ['chromium', 'chromium-browser']) {
    if (spawnSync('sh', ['-c', `command -v ${name}`]).status === 0) return name
  }
  return null
}

test('the HTML report: one self-contained page, one SVG row per hop, the cut marked, rendered by headless Chromium', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir()
  const html = join(dir, 'report.html')
  const r = await doctor(join(CHAINS, 'story-1-chat-cut-at-30s.yaml'), '--format', 'html', '--out', html)
  assert.equal(r.code, 1)
  assert.match(r.stderr, /report\.html: 2 errors, 1 warning, 1 note; the request is first cut at 30s by gke-gateway \(total-cut\)/)
  const page = await readFile(html, 'utf8')
  assert.doesNotMatch(page, /<script|<link |src="http/, 'self-contained')
  for (const hop of ['curl', 'gke-gateway', 'app']) assert.match(page, new RegExp(`<text x="12" y="\\d+" class="hop">${hop}</text>`))
  assert.match(page, /<g id="cut" data-cut-ms="30000">/)
  assert.match(page, /<g data-hop="gke-gateway" data-limit="requestTimeout"><rect [^>]*fill="#c62828"/)

  const browser = chromium()
  if (browser === null) return t.skip('chromium is not installed (CI installs it in .ci/run)')
  const png = join(dir, 'report.png')
  const shot = spawnSync(browser, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${join(dir, 'profile')}`, `--screenshot=${png}`, '--window-size=1280,900', `file://${html}`], { timeout: 45_000, encoding: 'utf8' })
  assert.equal(shot.status, 0, shot.stderr)
  const bytes = await readFile(png)
  assert.deepEqual([...bytes.subarray(1, 4)], [...Buffer.from('PNG')])
  assert.deepEqual([bytes.readUInt32BE(16), bytes.readUInt32BE(20)], [1280, 900])
  assert.ok((await stat(png)).size > 30_000, 'a page with a picture, not a blank one')
})
