// The preset catalogue: every component the doctor knows, by name.
import { CLIENTS } from './presets/clients.ts'
import { SERVERS } from './presets/servers.ts'
import { PROXIES } from './presets/proxies.ts'
import { CLOUDS } from './presets/clouds.ts'
import { AI_GATEWAYS } from './presets/ai-gateways.ts'
import { longhaulDefaults, type ConfigValue } from './longhaul.ts'
import { proxy, type Preset, type PresetValue } from './presets/types.ts'
import type { Property } from './properties.ts'

const LONGHAUL_SOURCE = 'longhaul src/config/schema.ts (the defaults, read through src/config/load.ts) ; DESIGN.md §3'

function longhaulPreset (): Preset {
  const values: Partial<Record<Property, PresetValue>> = {}
  for (const [property, value] of Object.entries(longhaulDefaults()) as Array<[Property, ConfigValue]>) {
    values[property] = { ...value, source: LONGHAUL_SOURCE, confirmed: true }
  }
  return proxy('longhaul', 'longhaul (this gateway; with config: and route:, the values of a real config file)', {
    streamIdleAfterHeaders: true,
    values,
    follows: { firstByteTimeout: 'requestTimeout' },
    notes: ['Sends the budget left upstream as x-longhaul-timeout-ms, so the app can stop work nobody waits for.']
  })
}

export const PRESETS: readonly Preset[] = [...CLIENTS, ...SERVERS, ...PROXIES, ...AI_GATEWAYS, ...CLOUDS, longhaulPreset()]

const BY_NAME = new Map(PRESETS.map((p) => [p.name, p]))

export function findPreset (name: string): Preset | undefined {
  return BY_NAME.get(name)
}

export const PRESET_NAMES: readonly string[] = PRESETS.map((p) => p.name)

/** A preset's values in a mode (null in a mode: the setting does not apply, so it is left out). */
export function modeValues (preset: Preset, mode: string | null): Partial<Record<Property, PresetValue>> {
  const values: Partial<Record<Property, PresetValue>> = { ...preset.values }
  const changes = mode === null ? undefined : preset.modes?.[mode]?.values
  for (const [property, value] of Object.entries(changes ?? {}) as Array<[Property, PresetValue | null]>) {
    if (value === null) delete values[property]
    else values[property] = value
  }
  return values
}

// The component's own names for a setting, read from how the preset writes it: `proxy_read_timeout`,
// `timeout (--timeout)`, `backend service timeoutSec`, `nginx.ingress.kubernetes.io/proxy-read-timeout`.
const TOKEN = /--?[A-Za-z][\w.\-/]*\w|[A-Za-z_][\w.\-/]*\w/g
const NAME_LIKE = /[a-z][A-Z]|\w[_.\-/]\w|^--/

function ownNames (setting: string): string[] {
  const names: string[] = []
  for (const m of setting.matchAll(TOKEN)) {
    const token = m[0]
    const leading = m.index === 0 && (setting.length === token.length || setting[token.length] === ' ')
    if (NAME_LIKE.test(token) || (leading && /^[a-z]+$/i.test(token) && (setting.length === token.length || setting.slice(token.length).startsWith(' (')))) {
      if (!/^(e\.g|i\.e|https?:)/.test(token)) names.push(token)
      // `Transport.IdleConnTimeout` is also written `IdleConnTimeout`.
      const last = token.split(/[./]/).pop()!
      if (last !== token && NAME_LIKE.test(last) && !last.startsWith('-')) names.push(last)
    }
  }
  return names
}

/** Each own setting name of a preset (in a mode) → the property it sets; a name shared by two properties goes to the one the other follows. */
export function settingNames (preset: Preset, mode: string | null): ReadonlyMap<string, Property> {
  const byName = new Map<string, Property[]>()
  for (const [property, value] of Object.entries(modeValues(preset, mode)) as Array<[Property, PresetValue]>) {
    for (const name of ownNames(value.setting)) byName.set(name, [...(byName.get(name) ?? []), property])
  }
  const index = new Map<string, Property>()
  for (const [name, properties] of byName) {
    const leaders = properties.filter((p) => preset.follows?.[p] === undefined)
    if (leaders.length === 1) index.set(name, leaders[0]!)
  }
  return index
}
