// The one HTTP call the authenticator makes: the rebuilt GetCallerIdentity.
// Hardened per rule 6: no redirects, timeouts, capped response.

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

/** An StsTransport on the runtime's fetch (undici). */
export function fetchStsTransport(options: { timeoutMs: number; maxBytes?: number }): StsTransport {
  const maxBytes = options.maxBytes ?? MAX_STS_RESPONSE_BYTES;
  return async (request) => {
    const response = await fetch(request.url, {
      method: 'POST',
      headers: request.headers,
      body: request.body,
      // A redirect would send the signed request somewhere we did not choose.
      redirect: 'manual',
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    const chunks: Buffer[] = [];
    let size = 0;
    if (response.body) {
      for await (const chunk of response.body) {
        size += (chunk as Uint8Array).length;
        if (size > maxBytes) {
          await response.body.cancel().catch(() => undefined);
          throw new Error('STS response too large');
        }
        chunks.push(Buffer.from(chunk as Uint8Array));
      }
    }
    return { status: response.status, contentType: response.headers.get('content-type') ?? '', body: Buffer.concat(chunks) };
  };
}
