// The official LLM SDKs (openai, @anthropic-ai/sdk) as test clients: pointed at a gateway, with
// every HTTP attempt they make recorded, and their idiomatic streaming loops run to the end.
import OpenAI from 'openai'
import Anthropic from '@anthropic-ai/sdk'

/** One HTTP attempt an SDK made: when it started and the request headers it sent. */
export interface SdkAttempt {
  at: number // performance.now()
  headers: Headers
}

export interface SdkOptions {
  /** Retries after the first attempt (the SDKs default to 2). */
  maxRetries?: number
  /** The SDK's own request timeout in ms (it sends it as X-Stainless-Timeout, in seconds). */
  timeoutMs?: number
  /** Extra headers on every request (x-demo-* knobs, x-request-id, x-longhaul-timeout-ms). */
  headers?: Record<string, string>
}

export interface SdkClient<C> {
  client: C
  /** Every attempt so far, retries included. */
  attempts: SdkAttempt[]
}

/** The client options both SDKs share, with a fetch that records each attempt. */
function clientOptions (options: SdkOptions, attempts: SdkAttempt[]) {
  return {
    maxRetries: options.maxRetries ?? 2,
    timeout: options.timeoutMs ?? 60_000,
    defaultHeaders: options.headers,
    fetch: (async (input, init) => {
      attempts.push({ at: performance.now(), headers: new Headers(init?.headers) })
      return await fetch(input, init)
    }) satisfies typeof fetch,
    logLevel: 'off' as const
  }
}

/** An openai client whose baseURL is the gateway's `/v1`. */
export function openaiClient (gatewayUrl: string, options: SdkOptions = {}): SdkClient<OpenAI> {
  const attempts: SdkAttempt[] = []
  const client = new OpenAI({
    apiKey: 'sk-test',
    baseURL: `${gatewayUrl}/v1`,
    ...clientOptions(options, attempts)
  })
  return { client, attempts }
}

/** An @anthropic-ai/sdk client whose baseURL is the gateway (it appends `/v1/messages`). */
export function anthropicClient (gatewayUrl: string, options: SdkOptions = {}): SdkClient<Anthropic> {
  const attempts: SdkAttempt[] = []
  const client = new Anthropic({
    apiKey: 'sk-ant-test',
    baseURL: gatewayUrl,
    ...clientOptions(options, attempts)
  })
  return { client, attempts }
}

/** What an idiomatic streaming loop saw: the text it assembled and what it raised, if anything. */
export interface StreamResult {
  text: string
  chunks: number
  error: unknown
}

/**
 * The loop of the openai README: `for await (const chunk of stream)` reading
 * `chunk.choices[0]?.delta?.content`. A chunk without `choices` (a foreign record handed over as
 * a chunk) is an error here, as it is in user code that indexes `choices[0]` directly.
 */
export async function openaiChatStream (sdk: SdkClient<OpenAI>, options: { headers?: Record<string, string> } = {}): Promise<StreamResult> {
  let text = ''
  let chunks = 0
  try {
    const stream = await sdk.client.chat.completions.create(
      { model: 'longhaul-demo', messages: [{ role: 'user', content: 'hello' }], stream: true },
      { headers: options.headers }
    )
    for await (const chunk of stream) {
      chunks++
      if (!Array.isArray(chunk.choices)) throw new TypeError(`a chunk without choices: ${JSON.stringify(chunk)}`)
      text += chunk.choices[0]?.delta?.content ?? ''
    }
    return { text, chunks, error: undefined }
  } catch (error) {
    return { text, chunks, error }
  }
}

/** The loop of the Anthropic README: `for await (const event of stream)` over a Messages stream. */
export async function anthropicMessagesStream (sdk: SdkClient<Anthropic>, options: { headers?: Record<string, string> } = {}): Promise<StreamResult> {
  let text = ''
  let chunks = 0
  try {
    const stream = await sdk.client.messages.create(
      { model: 'longhaul-demo', max_tokens: 1024, messages: [{ role: 'user', content: 'hello' }], stream: true },
      { headers: options.headers }
    )
    for await (const event of stream) {
      chunks++
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text
    }
    return { text, chunks, error: undefined }
  } catch (error) {
    return { text, chunks, error }
  }
}

export { OpenAI, Anthropic }
