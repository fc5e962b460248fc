// Typed error families with stable codes (DESIGN.md §2). Routes turn these
// into `{ code, message, requestId }`; tests assert on `code`.

/** Base of every error that maps to an HTTP answer. */
export abstract class SshcaError extends Error {
  abstract readonly status: number;
  /** Seconds a client should wait before retrying (503s). */
  readonly retryAfterSeconds?: number;

  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown; retryAfterSeconds?: number },
  ) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    if (options?.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/**
 * Authentication failed. The code and message stay in logs and the audit
 * record; the client always sees the same 401 body so a prober learns nothing
 * about which check failed.
 */
export class AuthnError extends SshcaError {
  readonly status = 401;
}

/** The caller is known but policy refuses what was asked. */
export class PolicyError extends SshcaError {
  readonly status = 403;
}

/** The request itself is malformed or unsupported. */
export class RequestError extends SshcaError {
  readonly status: number;
  constructor(code: string, message: string, options?: { cause?: unknown; status?: number }) {
    super(code, message, options);
    this.status = options?.status ?? 400;
  }
}

/** A dependency (store, STS, signer) is unavailable; nothing was issued. */
export class UnavailableError extends SshcaError {
  readonly status = 503;
}

/** The uniform body every 401 carries (rule: every 401 body is the same). */
export const UNIFORM_AUTHN_CODE = 'AUTHN_FAILED';
export const UNIFORM_AUTHN_MESSAGE = 'authentication failed';
