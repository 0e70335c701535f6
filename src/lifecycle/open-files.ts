// How many streams the process can hold: HTTP/1.1 needs a client and an upstream connection per
// stream, each a file descriptor. Node raises its soft RLIMIT_NOFILE to the hard limit as it
// starts (node.cc, PlatformInit: "Raise the open file descriptor limit"), so what is in force is
// the hard limit, which only the one who starts the process can raise.
import { readFile } from 'node:fs/promises'

/** Descriptors kept aside for listeners, the admin server, logs and the event loop. */
const RESERVED = 64

export interface OpenFiles {
  limit: number
  /** Concurrent HTTP/1.1 streams that fit: two descriptors each. */
  http1Streams: number
}

/** The open files limit in force (Linux /proc/self/limits); null where it cannot be read. */
export async function openFiles (): Promise<OpenFiles | null> {
  let text: string
  try { text = await readFile('/proc/self/limits', 'utf8') } catch { return null }
  const match = /^Max open files\s+(\d+|unlimited)/m.exec(text)
  if (match === null) return null
  const limit = match[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(match[1])
  return { limit, http1Streams: Math.max(0, Math.floor((limit - RESERVED) / 2)) }
}
