// DNS endpoints: `dns://name:port` resolves to every A and AAAA record, again every refresh
// interval (a Kubernetes headless Service gives one record per ready pod). A failed lookup keeps
// the last good set: an empty answer from a flaky resolver must not empty the upstream.
import { Resolver } from 'node:dns/promises'

export interface DnsName {
  readonly host: string
  readonly port: number
}

export function parseDnsEndpoint (text: string): DnsName | null {
  if (!text.startsWith('dns://')) return null
  const url = new URL(text)
  return { host: url.hostname, port: Number(url.port) }
}

export class Discovery {
  readonly #names: readonly DnsName[]
  readonly #refreshMs: number
  // A lookup that hangs must not hold a reload or the start for long: 1 s, twice.
  readonly #resolver = new Resolver({ timeout: 1000, tries: 2 })
  readonly #apply: (urls: string[]) => void
  readonly #failed: (name: string, reason: string) => void
  #timer: NodeJS.Timeout | undefined

  constructor (names: readonly DnsName[], options: { refreshMs: number, resolver: string | null }, apply: (urls: string[]) => void, failed: (name: string, reason: string) => void) {
    this.#names = names
    this.#refreshMs = options.refreshMs
    if (options.resolver !== null) this.#resolver.setServers([options.resolver])
    this.#apply = apply
    this.#failed = failed
  }

  /** Resolves once now (the upstream starts with its endpoints), then every refresh interval. */
  async start (): Promise<void> {
    await this.#refresh()
    this.#timer = setInterval(() => { void this.#refresh() }, this.#refreshMs)
    this.#timer.unref()
  }

  stop (): void {
    clearInterval(this.#timer)
  }

  async #refresh (): Promise<void> {
    const urls: string[] = []
    for (const name of this.#names) {
      const [v4, v6] = await Promise.allSettled([this.#resolver.resolve4(name.host), this.#resolver.resolve6(name.host)])
      if (v4.status === 'rejected' && v6.status === 'rejected') {
        // Keep the last good set (of every name: one failing name must not shrink the others).
        this.#failed(name.host, (v4.reason as { code?: string }).code ?? String(v4.reason))
        return
      }
      if (v4.status === 'fulfilled') for (const a of v4.value) urls.push(`http://${a}:${name.port}`)
      if (v6.status === 'fulfilled') for (const a of v6.value) urls.push(`http://[${a}]:${name.port}`)
    }
    this.#apply([...new Set(urls)].sort())
  }
}
