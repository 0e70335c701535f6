// Doctor chain files written to a temp directory (removed after the suite) and loaded the way
// `longhaul doctor` loads them; extra files (manifests, nginx.conf) go next to the chain file.
import { after } from 'node:test'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { loadChain } from '../../src/doctor/resolve.ts'
import type { Chain } from '../../src/doctor/model.ts'

const dirs: string[] = []
after(async () => { await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))) })

/** A fresh temp directory holding these files (path relative to it → content); returns its path. */
export async function tempFiles (files: Readonly<Record<string, string>> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'longhaul-doctor-'))
  dirs.push(dir)
  for (const [name, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, name)), { recursive: true })
    await writeFile(join(dir, name), text)
  }
  return dir
}

/** Writes `chain.yaml` (and any other files) and loads the chain. */
export async function chain (text: string, files: Readonly<Record<string, string>> = {}): Promise<Chain> {
  const dir = await tempFiles({ ...files, 'chain.yaml': text })
  return loadChain(join(dir, 'chain.yaml'))
}
