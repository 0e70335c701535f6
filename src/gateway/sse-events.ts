// Finds the events of an SSE stream as its chunks go by, without holding the stream back: the
// chunks are forwarded untouched by the caller, the scanner only looks. It follows the HTML
// standard's "Interpreting an event stream": lines end in CRLF, LF or CR; a line starting with a
// colon is a comment; `data` lines fill the event's data; a blank line dispatches the event, and
// an event without a data line is never dispatched (so comments and heartbeats are no events).
// What it keeps: the event's `event:` name (64 bytes at most) and, only when asked (usage or the
// error check), views of the current event's data lines (no copy: the chunks are handed on
// downstream, never rewritten), 64 KiB at most, dropped at the event's end.

/** What a scanner reports for each dispatched event (one that carried data). */
export interface StreamEvent {
  /**
   * It carries (part of) the answer, or an error record. Anthropic streams open with a preamble
   * (`message_start`, `content_block_start`) sent before the model produced anything, and send
   * `ping` events as heartbeats: those carry data but no answer, so the first-event clock and the
   * gap metric do not count them.
   */
  readonly answer: boolean
  /** An error record: `event: error` (Anthropic), `event: longhaul-error`, or data `{"error":…}` (OpenAI and compatible servers). Only checked when asked. */
  readonly error: boolean
  /** The `event:` field, '' when absent (`message` for a browser). */
  readonly type: string
  /** Of an error record: what it says went wrong (its error's type, code or message), when it says. */
  readonly detail?: string
}

export interface ScannerOptions {
  /** Parse usage reports (OpenAI `usage`, Anthropic `message_start` / `message_delta`). */
  readonly usage: boolean
  /** Tell error records from answers (the first-event gate needs it for the first event only). */
  readonly errors: boolean
}

/** Token counts a stream reported about itself; null where it reported none. */
export interface StreamUsage {
  input: number | null
  output: number | null
}

/** A usage report is a small JSON object: an event larger than this is no usage report. */
const MAX_CAPTURE = 64 * 1024
const MAX_TYPE = 64
const NOT_AN_ANSWER = new Set(['ping', 'message_start', 'content_block_start'])
const USAGE_EVENTS = new Set(['message_start', 'message_delta'])
const CR = 13
const LF = 10
const COLON = 58
const SPACE = 32
const DATA = Buffer.from('data')
const EVENT = Buffer.from('event')
const USAGE = Buffer.from('"usage"')
const ERROR = Buffer.from('"error"')
const NEWLINE = Buffer.from('\n')
const OPEN_BRACE = 123

// Where the scanner is within a line.
const LINE_START = 0
const NAME = 1
const VALUE_START = 2
const VALUE = 3
const IGNORE = 4

// The field a line names.
const OTHER = 0
const FIELD_DATA = 1
const FIELD_EVENT = 2

export class SseEventScanner {
  readonly usage: StreamUsage = { input: null, output: null }
  /** Data events dispatched so far. */
  events = 0
  #options: ScannerOptions
  readonly #onEvent: (event: StreamEvent) => void
  #state = LINE_START
  #field = OTHER
  /** Field-name bytes read so far, and which known names they still match (bit 1 data, bit 2 event). */
  #nameLength = 0
  #nameMatches = 0
  #afterCR = false
  #atStart = true
  #hasData = false
  #type = ''
  #captured: Uint8Array[] = []
  #capturedBytes = 0
  #overflow = false
  /**
   * Where the current chunk's next LF and next CR are (the chunk's length when it has none left),
   * found once: asking indexOf afresh on every line would scan to the chunk's end for the line-end
   * byte the stream does not use, on every line (quadratic in the chunk's size).
   */
  #nextLF = -1
  #nextCR = -1

  constructor (options: ScannerOptions, onEvent: (event: StreamEvent) => void) {
    this.#options = options
    this.#onEvent = onEvent
  }

  /** Stop checking for error records (after the first event, say): less to copy. */
  set errors (on: boolean) { this.#options = { ...this.#options, errors: on } }

  push (chunk: Uint8Array): void {
    let i = 0
    this.#nextLF = -1
    this.#nextCR = -1
    // A byte order mark may open the stream (and is not part of the first field name).
    if (this.#atStart && chunk.length > 0) {
      this.#atStart = false
      if (chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) i = 3
    }
    /** Start of the current data or event value within this chunk, or -1. */
    let valueFrom = this.#state === VALUE ? 0 : -1
    for (; i < chunk.length; i++) {
      let byte = chunk[i]!
      if ((this.#state === VALUE || this.#state === IGNORE) && byte !== CR && byte !== LF) {
        // The rest of a value or comment: skip to the line's end natively, not byte by byte.
        this.#afterCR = false
        i = this.#lineEnd(chunk, i)
        if (i === chunk.length) break
        byte = chunk[i]!
      }
      if (byte === CR || byte === LF) {
        if (byte === LF && this.#afterCR) {
          this.#afterCR = false
          continue
        }
        this.#afterCR = byte === CR
        if (valueFrom !== -1) this.#keep(chunk, valueFrom, i)
        valueFrom = -1
        this.#endLine()
        continue
      }
      this.#afterCR = false
      if (this.#state === LINE_START) {
        if (byte === COLON) {
          this.#state = IGNORE
        } else {
          this.#state = NAME
          this.#nameLength = 0
          this.#nameMatches = 3
          this.#name(byte)
        }
      } else if (this.#state === NAME) {
        if (byte === COLON) {
          this.#field = this.#fieldOfName()
          this.#state = this.#field === OTHER ? IGNORE : VALUE_START
          if (this.#field === FIELD_DATA) this.#dataLine()
        } else {
          this.#name(byte)
        }
      } else if (this.#state === VALUE_START) {
        // One space after the colon is not part of the value.
        this.#state = VALUE
        valueFrom = byte === SPACE ? i + 1 : i
      }
    }
    if (valueFrom !== -1 && valueFrom < chunk.length) this.#keep(chunk, valueFrom, chunk.length)
  }

  /** Index of the next CR or LF at or after `from`, or the chunk's length: each byte of the chunk is searched at most twice. */
  #lineEnd (chunk: Uint8Array, from: number): number {
    if (this.#nextLF < from) this.#nextLF = indexOrEnd(chunk, LF, from)
    if (this.#nextCR < from) this.#nextCR = indexOrEnd(chunk, CR, from)
    return Math.min(this.#nextLF, this.#nextCR)
  }

  #name (byte: number): void {
    const n = this.#nameLength++
    if (DATA[n] !== byte) this.#nameMatches &= ~1
    if (EVENT[n] !== byte) this.#nameMatches &= ~2
  }

  #fieldOfName (): number {
    if ((this.#nameMatches & 1) !== 0 && this.#nameLength === DATA.length) return FIELD_DATA
    if ((this.#nameMatches & 2) !== 0 && this.#nameLength === EVENT.length) return FIELD_EVENT
    return OTHER
  }

  /** A data line begins: the event will be dispatched; lines of one event's data join with LF. */
  #dataLine (): void {
    if (this.#hasData && this.#capturing()) this.#append(NEWLINE)
    this.#hasData = true
  }

  /**
   * Usage comes in unnamed events (OpenAI and compatible servers) or in Anthropic's message_start
   * and message_delta: the data of other named events (every token of an Anthropic stream) is not kept.
   */
  #capturing (): boolean {
    return !this.#overflow && (this.#options.errors || (this.#options.usage && (this.#type === '' || USAGE_EVENTS.has(this.#type))))
  }

  /** Keeps part of a value: the event name, or the data when usage or errors are wanted. */
  #keep (chunk: Uint8Array, from: number, to: number): void {
    if (to <= from) return
    if (this.#field === FIELD_EVENT) {
      if (this.#type.length < MAX_TYPE) this.#type += Buffer.from(chunk.buffer, chunk.byteOffset + from, Math.min(to - from, MAX_TYPE)).toString('latin1')
    } else if (this.#field === FIELD_DATA && this.#capturing()) {
      this.#append(chunk.subarray(from, to))
    }
  }

  #append (part: Uint8Array): void {
    this.#capturedBytes += part.length
    if (this.#capturedBytes > MAX_CAPTURE) {
      this.#overflow = true
      this.#captured = []
    } else {
      this.#captured.push(part)
    }
  }

  #endLine (): void {
    if (this.#state === LINE_START) {
      this.#dispatch()
    } else if (this.#state === NAME) {
      // A line with no colon is a field name with an empty value.
      this.#field = this.#fieldOfName()
      if (this.#field === FIELD_DATA) this.#dataLine()
    }
    this.#state = LINE_START
    this.#field = OTHER
  }

  #dispatch (): void {
    if (this.#hasData) {
      this.events++
      const parts = this.#captured
      const data = parts.length === 0 ? null : parts.length === 1 ? Buffer.from(parts[0]!.buffer, parts[0]!.byteOffset, parts[0]!.length) : Buffer.concat(parts)
      const type = this.#type.trim()
      if (this.#options.usage && data !== null && reportsUsage(data)) this.#readUsage(data)
      const error = this.#options.errors && (type === 'error' || type === 'longhaul-error' || (data !== null && data.includes(ERROR) && hasErrorMember(data)))
      const detail = error && data !== null ? errorDetail(data) : undefined
      this.#reset()
      this.#onEvent(detail === undefined ? { answer: error || !NOT_AN_ANSWER.has(type), error, type } : { answer: true, error, type, detail })
    } else {
      this.#reset()
    }
  }

  #reset (): void {
    this.#hasData = false
    this.#type = ''
    if (this.#capturedBytes > 0) this.#captured = []
    this.#capturedBytes = 0
    this.#overflow = false
  }

  /** The last figures a stream reported win: servers that report as they go send running totals. */
  #readUsage (data: Buffer): void {
    const doc = parseObject(data)
    if (doc === null) return
    // OpenAI (stream_options.include_usage): the last chunk's `usage`.
    const usage = objectAt(doc, 'usage')
    if (usage !== null) {
      this.#take('input', usage.prompt_tokens ?? usage.input_tokens)
      this.#take('output', usage.completion_tokens ?? usage.output_tokens)
    }
    // Anthropic: the input count in message_start's message.usage, the output in message_delta's usage.
    const message = objectAt(doc, 'message')
    const started = message === null ? null : objectAt(message, 'usage')
    if (doc.type === 'message_start' && started !== null) {
      this.#take('input', started.input_tokens)
      this.#take('output', started.output_tokens)
    }
  }

  #take (kind: keyof StreamUsage, value: unknown): void {
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) this.usage[kind] = value
  }
}

function indexOrEnd (chunk: Uint8Array, byte: number, from: number): number {
  const at = chunk.indexOf(byte, from)
  return at === -1 ? chunk.length : at
}

/** The data has a `"usage"` member that is an object (OpenAI sends `"usage":null` on every other chunk: no parse for those). */
function reportsUsage (data: Buffer): boolean {
  let at = data.indexOf(USAGE)
  while (at !== -1) {
    let i = at + USAGE.length
    while (data[i] === SPACE || data[i] === COLON) i++
    if (data[i] === OPEN_BRACE) return true
    at = data.indexOf(USAGE, i)
  }
  return false
}

function parseObject (data: Buffer): Record<string, unknown> | null {
  try {
    const doc: unknown = JSON.parse(data.toString('utf8'))
    return typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? doc as Record<string, unknown> : null
  } catch {
    return null
  }
}

function objectAt (doc: Record<string, unknown>, key: string): Record<string, unknown> | null {
  const value = doc[key]
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : null
}

/** An error record's own words: `error.type` (Anthropic, OpenAI), `error.code`, `code` (longhaul's record) or the message. */
function errorDetail (data: Buffer): string | undefined {
  const doc = parseObject(data)
  if (doc === null) return undefined
  const error = objectAt(doc, 'error')
  const words = [error?.type, error?.code, doc.code, typeof doc.error === 'string' ? doc.error : undefined, error?.message]
  const found = words.find((w): w is string => typeof w === 'string' && w !== '')
  return found?.slice(0, 200)
}

/** `{"error": {…}}` or `{"error": "…"}`: the error convention of OpenAI-compatible streams. */
function hasErrorMember (data: Buffer): boolean {
  const doc = parseObject(data)
  return doc !== null && doc.error !== undefined && doc.error !== null
}
