// The HTML report's picture: one row per hop, its limits drawn as bars on the request's time axis,
// against the workload (its duration and an example silence), with the cut marked. Red cuts the
// request, green lets it through; a limit beyond the axis ends in an arrow. With a `deploy:`, a
// last row shows the same request when its pod is told to stop as it arrives.
import { fmt } from './format.ts'
import { silenceStartMs } from './rules.ts'
import type { Chain, Finding, Hop } from './model.ts'
import type { Property } from './properties.ts'

const WIDTH = 1180
const LABEL = 210
const PLOT = WIDTH - LABEL - 30
const LANE = 22
const TOP = 46

const COLOR = { ok: '#2e7d32', cut: '#c62828', warn: '#ef6c00', none: '#a5d6a7', work: '#1565c0', grid: '#e0e0e0', text: '#212121', dim: '#757575', heart: '#ad1457' }

export function esc (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200].map((s) => s * 1000)

interface Lane {
  readonly label: string
  readonly from: number
  /** null: no limit. */
  readonly to: number | null
  readonly color: string
  readonly data: string
}

/** The limits of a hop that act on one request, as lanes; unknown ones are left out. */
function hopLanes (hop: Hop, chain: Chain, cutters: ReadonlySet<string>, warned: ReadonlySet<string>): Lane[] {
  const w = chain.workload
  const out: Lane[] = []
  const add = (property: Property, label: string, from: number, fails: (ms: number) => boolean): void => {
    const value = hop.values[property]
    if (value === undefined) return
    const cuts = value.ms !== null && fails(value.ms)
    const key = `${hop.name}.${property}`
    const color = value.ms === null ? COLOR.none : cuts && cutters.has(key) ? COLOR.cut : cuts || warned.has(key) ? COLOR.warn : COLOR.ok
    out.push({ label, from, to: value.ms === null ? null : from + value.ms, color, data: `data-hop="${esc(hop.name)}" data-limit="${property}"` })
  }
  add('requestTimeout', 'total', 0, (ms) => ms < w.durationMs)
  if (w.upload !== null) add('uploadTimeout', 'upload', 0, (ms) => ms < w.upload!.ms)
  if (!w.streaming) add('firstByteTimeout', 'first byte', 0, (ms) => ms < w.durationMs)
  else if (w.firstByteMs !== null) add('firstByteTimeout', 'first byte', 0, (ms) => ms <= w.firstByteMs!)
  // An idle timer that also waits for the headers meets the wait for the first byte first, when that is the longer silence.
  const waitsHeaders = hop.preset?.streamIdleAfterHeaders !== true
  const firstWait = w.streaming && waitsHeaders && w.firstByteMs !== null && w.firstByteMs > w.maxSilenceMs ? w.firstByteMs : null
  if (firstWait !== null) add('streamIdleTimeout', 'idle (until the first byte)', 0, (ms) => ms <= firstWait)
  else if (w.streaming || waitsHeaders) add('streamIdleTimeout', 'idle', silenceStartMs(w), (ms) => ms <= w.maxSilenceMs)
  // An unlimited write timeout says something only when nothing else bounds the hop (a proxy that hangs).
  if (hop.values.writeTimeout?.ms !== null || out.length === 0) add('writeTimeout', 'write', 0, (ms) => ms < w.durationMs)
  return out
}

/** The same request when its pod gets SIGTERM just as the request arrives (the last one routed to it). */
function rolloutLanes (chain: Chain): Lane[] {
  const deploy = chain.deploy
  if (deploy === null) return []
  const w = chain.workload
  const delay = Math.max(0, ...deploy.hops.map((h) => h.values.drainDelay?.ms ?? 0))
  const left = Math.max(0, deploy.graceMs - delay)
  const lanes: Lane[] = [{ label: 'until SIGKILL', from: 0, to: left, color: left < w.durationMs ? COLOR.cut : COLOR.ok, data: 'data-limit="terminationGracePeriod"' }]
  for (const hop of deploy.hops) {
    const drain = hop.values.drainTimeout?.ms
    if (drain === undefined || drain === null) continue
    lanes.push({ label: `${hop.name} drain`, from: 0, to: drain, color: drain < w.durationMs ? COLOR.cut : COLOR.ok, data: `data-hop="${esc(hop.name)}" data-limit="drainTimeout"` })
  }
  return lanes
}

export function timelineSvg (chain: Chain, findings: readonly Finding[], cut: Finding | null): string {
  const w = chain.workload
  const rollout = rolloutLanes(chain)
  const span = Math.max(w.durationMs * 1.15, (cut?.cutAtMs ?? 0) * 1.1)
  const step = STEPS.find((s) => span / s <= 10) ?? STEPS[STEPS.length - 1]!
  const end = Math.ceil(span / step) * step
  const x = (ms: number): number => LABEL + Math.min(ms, end) / end * PLOT
  const cutters = new Set(findings.filter((f) => f.severity === 'error').flatMap((f) => Object.keys(f.values)))
  // A warning's first value is the limit it blames (the outer hop of a nesting).
  const warned = new Set(findings.filter((f) => f.severity === 'warning').map((f) => Object.keys(f.values)[0]!))
  const silenceFrom = silenceStartMs(w)
  const silenceTo = silenceFrom + w.maxSilenceMs
  const backgrounds: string[] = []
  const body: string[] = []

  /** A labelled row of lanes; returns its height. */
  const row = (y: number, index: number, name: string, sub: string, lanes: readonly Lane[], empty: string): number => {
    const height = Math.max(44, lanes.length * LANE + 12)
    backgrounds.push(`<rect x="0" y="${y}" width="${WIDTH}" height="${height}" fill="${index % 2 === 0 ? '#f5f5f5' : '#ffffff'}"/>`)
    body.push(`<text x="12" y="${y + 20}" class="hop">${esc(name)}</text><text x="12" y="${y + 35}" class="preset">${esc(sub)}</text>`)
    if (lanes.length === 0) body.push(`<text x="${x(0) + 6}" y="${y + 21}" class="dim">${esc(empty)}</text>`)
    lanes.forEach((lane, i) => {
      const ly = y + 6 + i * LANE
      const to = lane.to ?? end
      const beyond = to > end
      const x1 = x(lane.from)
      const x2 = x(to)
      const label = lane.to === null ? `${lane.label}: no limit` : `${lane.label} ${fmt(lane.to - lane.from)}`
      const inside = x2 - x1 > label.length * 6.8 + 10
      const textClass = !inside || lane.to === null ? 'offbar' : 'onbar'
      body.push(`<g ${lane.data}><rect x="${x1}" y="${ly}" width="${Math.max(2, x2 - x1)}" height="16" rx="3" fill="${lane.color}"/>`)
      if (beyond || lane.to === null) body.push(`<path d="M${x2 - 1},${ly - 2} l9,10 l-9,10 z" fill="${lane.color}"/>`)
      body.push(`<text x="${inside ? x1 + 5 : x2 + (beyond ? 12 : 5)}" y="${ly + 12.5}" class="${textClass}">${esc(label)}</text></g>`)
    })
    return height
  }

  // The workload row: the request's life, and the silence it has to survive.
  const wy = TOP + 8
  body.push(`<text x="12" y="${wy + 16}" class="hop">workload</text><text x="12" y="${wy + 31}" class="preset">${esc(w.streaming ? `streams for ${fmt(w.durationMs)}` : `answers after ${fmt(w.durationMs)}`)}</text>`)
  body.push(`<rect x="${x(0)}" y="${wy + 4}" width="${x(w.durationMs) - x(0)}" height="22" rx="3" fill="${COLOR.work}" opacity="0.85"/>`)
  body.push(`<rect x="${x(silenceFrom)}" y="${wy + 4}" width="${Math.max(2, x(silenceTo) - x(silenceFrom))}" height="22" fill="url(#silence)" stroke="${COLOR.work}"/>`)
  if (w.streaming) {
    body.push(`<text x="${x(silenceFrom)}" y="${wy + 42}" class="silence">▲ silent for ${esc(fmt(w.maxSilenceMs))} (thinking, tool calls)</text>`)
    const first = w.firstByteMs ?? 0
    if (first > 0) {
      body.push(`<rect x="${x(0)}" y="${wy + 4}" width="${Math.max(2, x(first) - x(0))}" height="22" fill="url(#silence)" stroke="${COLOR.work}"/>`)
      if (x(first) - x(0) > 150) body.push(`<text x="${x(0) + 6}" y="${wy + 19}" class="onbar dark">waiting for the first byte</text>`)
    }
    if (x(silenceFrom) - x(first) > 60) body.push(`<text x="${x(first) + 6}" y="${wy + 19}" class="onbar">tokens</text>`)
    if (x(w.durationMs) - x(silenceTo) > 90) body.push(`<text x="${x(silenceTo) + 6}" y="${wy + 19}" class="onbar">tokens flow</text>`)
  } else {
    body.push(`<text x="${x(silenceFrom) + 6}" y="${wy + 19}" class="onbar dark">no bytes until the answer</text>`)
    body.push(`<text x="${x(w.durationMs)}" y="${wy + 42}" text-anchor="end" class="silence">the whole answer arrives at ${esc(fmt(w.durationMs))} ▲</text>`)
  }

  // The request's phases before its answer: the upload, then the wait for the first byte.
  if (w.upload !== null) {
    body.push(`<rect x="${x(0)}" y="${wy + 4}" width="${Math.max(2, x(w.upload.ms) - x(0))}" height="22" fill="#6a1b9a" opacity="0.85"/>`)
    if (x(w.upload.ms) - x(0) > 60) body.push(`<text x="${x(0) + 6}" y="${wy + 19}" class="onbar">upload ${esc(fmt(w.upload.ms))}</text>`)
  }
  if (w.firstByteMs !== null) body.push(`<path d="M${x(w.firstByteMs)},${wy - 2} l5,-8 l-10,0 z" fill="${COLOR.work}"/><text x="${x(w.firstByteMs) + 8}" y="${wy - 3}" class="silence">first byte at ${esc(fmt(w.firstByteMs))}</text>`)

  let y = TOP + 64
  for (const hop of chain.hops) {
    const height = row(y, hop.index, hop.name, hop.preset?.name ?? 'no preset', hopLanes(hop, chain, cutters, warned), 'no limit on one request known for this hop')
    const every = hop.values.heartbeat?.ms
    if (typeof every === 'number' && every > 0) {
      const ty = y + height - 7
      for (let t = silenceFrom + every; t < silenceTo && t < end; t += every) body.push(`<path d="M${x(t)},${ty - 5} l4,5 l-4,5 l-4,-5 z" fill="${COLOR.heart}"/>`)
      body.push(`<text x="${x(silenceTo) + 6}" y="${ty + 4}" class="heart">♦ heartbeat every ${esc(fmt(every))}: protects the hops above</text>`)
    }
    y += height
  }
  const hopsBottom = y
  let rolloutTop = y
  if (chain.deploy !== null) {
    y += cut === null ? 10 : 44
    rolloutTop = y
    y += row(y, 1, 'rollout', 'SIGTERM as it arrives', rollout, '')
  }

  // Axis and grid, over the rows' backgrounds and under the bars.
  const grid: string[] = []
  for (let t = 0; t <= end; t += step) {
    grid.push(`<line x1="${x(t)}" y1="${TOP}" x2="${x(t)}" y2="${y}" stroke="${COLOR.grid}"/>`)
    grid.push(`<text x="${x(t)}" y="${TOP - 8}" text-anchor="middle" class="tick">${esc(step % 60_000 === 0 ? fmt(t) : `${t / 1000}s`)}</text>`)
  }
  grid.push(`<line x1="${x(w.durationMs)}" y1="${TOP}" x2="${x(w.durationMs)}" y2="${y}" stroke="${COLOR.work}" stroke-width="1.5" stroke-dasharray="4 3"/>`)
  grid.push(`<rect x="${x(silenceFrom)}" y="${TOP}" width="${Math.max(2, x(silenceTo) - x(silenceFrom))}" height="${hopsBottom - TOP}" fill="${COLOR.work}" opacity="0.06"/>`)

  const marker: string[] = []
  const tag = (at: number, top: number, bottom: number, text: string, id: string): void => {
    const cx = x(at)
    const width = text.length * 8.2 + 12
    const left = cx + width > WIDTH
    marker.push(`<g id="${id}" data-cut-ms="${at}">`)
    marker.push(`<line x1="${cx}" y1="${top}" x2="${cx}" y2="${bottom + 4}" stroke="${COLOR.cut}" stroke-width="3" stroke-dasharray="7 4"/>`)
    marker.push(`<rect x="${left ? cx - width - 4 : cx + 4}" y="${bottom + 8}" width="${width}" height="24" rx="4" fill="${COLOR.cut}"/>`)
    marker.push(`<text x="${left ? cx - width + 2 : cx + 10}" y="${bottom + 25}" class="cutlabel">${esc(text)}</text></g>`)
  }
  if (cut !== null) {
    const lost = cut.rule === 'write-timeout' && !w.streaming
    marker.push(`<rect x="${x(cut.cutAtMs!)}" y="${wy + 4}" width="${Math.max(0, x(w.durationMs) - x(cut.cutAtMs!))}" height="22" fill="#ffffff" opacity="0.75"/>`)
    const again = cut.retries ?? 0
    tag(cut.cutAtMs!, TOP - 2, hopsBottom, `✂ ${lost ? 'answer lost' : 'cut'} at ${fmt(cut.cutAtMs)} by ${cut.hops.join(' + ')} (${cut.rule})${again === 0 ? '' : `, then ${again} retr${again === 1 ? 'y' : 'ies'}: ${again + 1} cuts`}`, 'cut')
  }
  const rolloutCut = Math.min(...rollout.filter((l) => l.color === COLOR.cut).map((l) => l.to!))
  let bottom = cut === null ? hopsBottom : hopsBottom + 36
  if (Number.isFinite(rolloutCut)) {
    tag(rolloutCut, rolloutTop, y, `✂ in a rollout, cut at ${fmt(rolloutCut)} (termination-grace)`, 'rollout-cut')
    bottom = y + 36
  }
  const heightAll = Math.max(bottom, y) + 8
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${heightAll}" width="${WIDTH}" height="${heightAll}" role="img" aria-label="timeline of one request through each hop">
<defs><pattern id="silence" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="8" height="8" fill="#bbdefb"/><line x1="0" y1="0" x2="0" y2="8" stroke="#64b5f6" stroke-width="3"/></pattern></defs>
<style>
.hop{font:600 14px system-ui,sans-serif;fill:${COLOR.text}}.preset{font:12px system-ui,sans-serif;fill:${COLOR.dim}}
.tick{font:12px system-ui,sans-serif;fill:${COLOR.dim}}.onbar{font:600 12px system-ui,sans-serif;fill:#fff}.onbar.dark{fill:#0d47a1}
.offbar{font:600 12px system-ui,sans-serif;fill:${COLOR.text}}.dim{font:italic 12px system-ui,sans-serif;fill:${COLOR.dim}}
.cutlabel{font:700 14px system-ui,sans-serif;fill:#fff}.silence{font:600 12px system-ui,sans-serif;fill:#0d47a1}.heart{font:600 12px system-ui,sans-serif;fill:${COLOR.heart}}
</style>
${backgrounds.join('\n')}
${grid.join('\n')}
${body.join('\n')}
${marker.join('\n')}
</svg>`
}
