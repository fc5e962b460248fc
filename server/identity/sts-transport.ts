// The one HTTP call the authenticator makes: the rebuilt GetCallerIdentity.
// Hardened per rule 6: no redirects, connect and total timeouts, capped
// response.
import { Agent, request } from 'undici';

/** A request the server built itself (never a client-supplied URL or header set). */
export interface StsRequest {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface StsResponse {
  readonly status: number;
  readonly contentType: string;
  readonly body: Buffer;
}

/** Sends a rebuilt STS request. Rejects on network failure, timeout or oversize answer. */
export type StsTransport = (request: StsRequest) => Promise<StsResponse>;

export const MAX_STS_RESPONSE_BYTES = 64 * 1024;

/** An StsTransport on undici with its own connection pool. */
export function undiciStsTransport(options: { connectTimeoutMs: number; totalTimeoutMs: number; maxBytes?: number }): StsTransport & { close(): Promise<void> } {
  const maxBytes = options.maxBytes ?? MAX_STS_RESPONSE_BYTES;
  const agent = new Agent({
    connect: { timeout: options.connectTimeoutMs },
    headersTimeout: options.totalTimeoutMs,
    bodyTimeout: options.totalTimeoutMs,
  });
  const send = async (req: StsRequest): Promise<StsResponse> => {
    // undici's request() never follows redirects: a 3xx comes back as a
    // status and is refused, so the signed request goes nowhere we did not choose.
    const response = await request(req.url, {
      method: 'POST',
      headers: req.headers,
      body: req.body,
      dispatcher: agent,
      signal: AbortSignal.timeout(options.totalTimeoutMs),
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        response.body.destroy();
        throw new Error(`STS response exceeds ${maxBytes} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    const contentType = response.headers['content-type'];
    return { status: response.statusCode, contentType: Array.isArray(contentType) ? contentType.join(',') : contentType ?? '', body: Buffer.concat(chunks) };
  };
  return Object.assign(send, { close: () => agent.close() });
}
