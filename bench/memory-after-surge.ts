// What the gateway's memory does after a surge of streams: is the RSS left behind reclaimable
// heap, memory the allocator keeps, or a leak? For each variant (glibc defaults, then
// MALLOC_ARENA_MAX=2) a fresh gateway takes three surges of N concurrent SSE streams over h2c;
// after each, once nothing is in flight, its memory is read at once, 10 s later, and after a full
// garbage collection (asked for over the inspector protocol: HeapProfiler.collectGarbage). A leak
// shows as heap that grows from one surge to the next; allocator retention as RSS well above the
// heap after GC.
//
//   node bench/memory-after-surge.ts [--streams 10000] [--per-session 250] [--json]
import http2 from 'node:http2'
import { parseArgs } from 'node:util'
import WebSocket from 'ws'
import { machine, positiveInt, round, runBounded, startGateway, startUpstream, stopChild, type Gateway } from './lib.ts'

const { values: args } = parseArgs({
  options: {
    streams: { type: 'string', default: '10000' },
    'per-session': { type: 'string', default: '250' },
    json: { type: 'boolean', default: false }
  }
})
const STREAMS = positiveInt('streams', args.streams, 50_000)
const PER_SESSION = positiveInt('per-session', args['per-session'], 250)

interface Memory { rssMiB: number, heapUsedMiB: number, heapTotalMiB: number, externalMiB: number }

/** The gateway's own process metrics (prom-client defaults), in MiB. */
async function memory (gw: Gateway): Promise<Memory> {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text()
  const metric = (name: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(`${name} `))
    return line === undefined ? Number.NaN : round(Number(line.split(' ')[1]) / 2 ** 20, 1)
  }
  return {
    rssMiB: metric('process_resident_memory_bytes'),
    heapUsedMiB: metric('nodejs_heap_size_used_bytes'),
    heapTotalMiB: metric('nodejs_heap_size_total_bytes'),
    externalMiB: metric('nodejs_external_memory_bytes')
  }
}

async function inflight (gw: Gateway): Promise<number> {
  return ((await (await fetch(`${gw.adminUrl}/status`)).json()) as { inflight: number }).inflight
}

/** N concurrent event streams, each 3 events 1 s apart; resolves once all ended, with the peak RSS seen. */
async function surge (gw: Gateway): Promise<{ completed: number, peakRssMiB: number }> {
  const sessions: http2.ClientHttp2Session[] = []
  let peak = 0
  const sampler = setInterval(() => { void memory(gw).then((m) => { peak = Math.max(peak, m.rssMiB) }, () => {}) }, 250)
  const streams: Array<Promise<boolean>> = []
  for (let i = 0; i < STREAMS; i++) {
    if (i % PER_SESSION === 0) {
      const session = http2.connect(gw.url)
      session.on('error', () => {})
      sessions.push(session)
    }
    const session = sessions[sessions.length - 1]!
    streams.push(new Promise((resolve) => {
      const s = session.request({ ':path': '/sse?chunks=3&interval-ms=1000' })
      s.on('error', () => {})
      s.resume()
      let ended = false
      s.on('end', () => { ended = true })
      s.on('close', () => resolve(ended && s.rstCode === http2.constants.NGHTTP2_NO_ERROR))
    }))
  }
  const results = await Promise.all(streams)
  clearInterval(sampler)
  for (const s of sessions) s.close()
  return { completed: results.filter(Boolean).length, peakRssMiB: peak }
}

async function untilIdle (gw: Gateway): Promise<void> {
  const until = Date.now() + 30_000
  while (await inflight(gw) > 0) {
    if (Date.now() > until) throw new Error('requests still in flight 30 s after the surge')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** A full GC in the gateway, through its inspector (started with --inspect on port 0). */
async function collectGarbage (gw: Gateway): Promise<void> {
  const url = /Debugger listening on (ws:\/\/\S+)/.exec(gw.stderr())?.[1]
  if (url === undefined) throw new Error(`no inspector URL on the gateway's stderr: ${gw.stderr().slice(0, 500)}`)
  const ws = new WebSocket(url)
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  await new Promise<void>((resolve) => {
    ws.on('message', (data: Buffer) => { if ((JSON.parse(data.toString()) as { id?: number }).id === 1) resolve() })
    ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }))
  })
  ws.close()
}

interface Variant { name: string, env: Record<string, string> }

async function runVariant (variant: Variant): Promise<Record<string, unknown>> {
  const upstream = await startUpstream()
  const gw = await startGateway({
    upstreamUrl: upstream.url,
    logLevel: 'warn',
    streamIdle: '10s',
    maxConnectionsPerEndpoint: STREAMS,
    protocol: 'h2c',
    env: variant.env,
    nodeFlags: ['--inspect=127.0.0.1:0']
  })
  try {
    const baseline = await memory(gw)
    const rounds = []
    for (let round = 1; round <= 3; round++) {
      const { completed, peakRssMiB } = await surge(gw)
      await untilIdle(gw)
      const idle = await memory(gw)
      await new Promise((resolve) => setTimeout(resolve, 10_000))
      const later = await memory(gw)
      await collectGarbage(gw)
      const afterGc = await memory(gw)
      rounds.push({ round, completed, peakRssMiB, idle, after10s: later, afterGc })
    }
    return { variant: variant.name, baseline, rounds }
  } finally {
    await stopChild(gw)
    await stopChild(upstream)
  }
}

runBounded(15 * 60_000, async () => {
  const variants: Variant[] = [
    { name: 'glibc defaults', env: {} },
    { name: 'MALLOC_ARENA_MAX=2', env: { MALLOC_ARENA_MAX: '2' } }
  ]
  const results = []
  for (const v of variants) results.push(await runVariant(v))
  if (args.json) {
    process.stdout.write(JSON.stringify({ machine: machine(), streams: STREAMS, perSession: PER_SESSION, results }, null, 2) + '\n')
    return 0
  }
  const fmt = (m: Memory): string => `rss ${m.rssMiB} heap ${m.heapUsedMiB}/${m.heapTotalMiB} ext ${m.externalMiB}`
  process.stdout.write(`${STREAMS} streams, ${PER_SESSION} per h2c session; MiB\n`)
  for (const r of results as Array<{ variant: string, baseline: Memory, rounds: Array<{ round: number, completed: number, peakRssMiB: number, idle: Memory, after10s: Memory, afterGc: Memory }> }>) {
    process.stdout.write(`\n${r.variant}: baseline ${fmt(r.baseline)}\n`)
    for (const x of r.rounds) {
      process.stdout.write(`  surge ${x.round}: ${x.completed} completed, peak rss ${x.peakRssMiB}\n`)
      process.stdout.write(`    idle       ${fmt(x.idle)}\n    after 10 s ${fmt(x.after10s)}\n    after GC   ${fmt(x.afterGc)}\n`)
    }
  }
  return 0
})
