// The preset catalogue: every component the doctor knows, by name.
import { CLIENTS } from './presets/clients.ts'
import { SERVERS } from './presets/servers.ts'
import { PROXIES } from './presets/proxies.ts'
import { CLOUDS } from './presets/clouds.ts'
import { longhaulDefaults, type ConfigValue } from './longhaul.ts'
import type { Preset, PresetValue } from './presets/types.ts'
import type { Property } from './properties.ts'

const LONGHAUL_SOURCE = 'longhaul src/config/schema.ts (the defaults, read through src/config/load.ts) ; DESIGN.md §3'

function longhaulPreset (): Preset {
  const values: Partial<Record<Property, PresetValue>> = {}
  for (const [property, value] of Object.entries(longhaulDefaults()) as Array<[Property, ConfigValue]>) {
    values[property] = { ...value, source: LONGHAUL_SOURCE, confirmed: true }
  }
  return {
    name: 'longhaul',
    component: 'longhaul (this gateway; with config: and route:, the values of a real config file)',
    group: 'proxies',
    streamIdleAfterHeaders: true,
    values,
    follows: { firstByteTimeout: 'requestTimeout' },
    notes: ['Sends the budget left upstream as x-longhaul-timeout-ms, so the app can stop work nobody waits for.']
  }
}

export const PRESETS: readonly Preset[] = [...CLIENTS, ...SERVERS, ...PROXIES, ...CLOUDS, longhaulPreset()]

const BY_NAME = new Map(PRESETS.map((p) => [p.name, p]))

export function findPreset (name: string): Preset | undefined {
  return BY_NAME.get(name)
}

export const PRESET_NAMES: readonly string[] = PRESETS.map((p) => p.name)
