// Client failures with stable codes and the exit code each one maps to.
import { CodedError } from '../protocol/coded-error.js';

/** Exit codes of the `sshca` command (documented in docs/client.md). */
export const EXIT = {
  ok: 0,
  /** `status`: no certificate valid long enough. */
  notValid: 1,
  usage: 2,
  /** The server refused: authentication or policy. */
  refused: 3,
  /** The server could not be reached or is unavailable. */
  unavailable: 4,
  /** Local AWS credentials are missing or expired. */
  credentials: 5,
  /** Local files or tools (ssh-keygen) failed. */
  local: 6,
} as const;

/** A failure the CLI reports in plain words. */
export class ClientError extends CodedError {
  /** The server's id for the request that failed (its log and audit record carry it). */
  readonly requestId?: string;
  /** A 503's Retry-After: the server asks to be tried again this much later. */
  readonly retryAfterSeconds?: number;

  constructor(code: string, message: string, options?: { cause?: unknown; requestId?: string; retryAfterSeconds?: number }) {
    super(code, message, options);
    if (options?.requestId !== undefined) this.requestId = options.requestId;
    if (options?.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }

  get exitCode(): number {
    if (this.code === 'CLIENT_USAGE' || this.code === 'CLIENT_NOT_HTTPS') return EXIT.usage;
    if (this.code === 'CLIENT_CLOCK_SKEW' || this.code === 'CLIENT_AUDIENCE_MISMATCH') return EXIT.refused;
    if (this.code === 'CLIENT_TLS_ERROR' || this.code === 'ANCHOR_UNAVAILABLE') return EXIT.unavailable;
    // The server found its chain at odds with its anchors (`sshca audit anchor`): the record does not verify.
    if (this.code.startsWith('AUDIT_') || this.code === 'ANCHOR_CONFLICT' || this.code === 'ANCHOR_INVALID') return EXIT.notValid;
    if (this.code.startsWith('AUTHN_') || this.code.startsWith('POLICY_') || this.code.startsWith('REQUEST_')) return EXIT.refused;
    if (this.code.startsWith('UNAVAILABLE_') || this.code === 'CLIENT_SERVER_UNREACHABLE' || this.code === 'INTERNAL_ERROR') return EXIT.unavailable;
    if (this.code.startsWith('CLIENT_CREDENTIALS') || this.code === 'CLIENT_NO_CREDENTIALS' || this.code === 'CLIENT_PROFILE_NOT_FOUND') return EXIT.credentials;
    return EXIT.local;
  }
}

/** The error line: message, the server's request id when there is one, code last. */
export function errorLine(err: ClientError): string {
  return `sshca: ${err.message}${err.requestId ? ` (request id ${err.requestId})` : ''} [${err.code}]\n`;
}

/** The same for --json (on stdout, beside the line on stderr): one object scripts can read. */
export function errorJson(err: ClientError): string {
  return `${JSON.stringify({ error: { code: err.code, message: err.message, ...(err.requestId ? { requestId: err.requestId } : {}), exitCode: err.exitCode } })}\n`;
}

/** A warning line, written like an error line (code last) but the command goes on. */
export function warningLine(warning: { readonly code: string; readonly message: string }): string {
  return `sshca: warning: ${warning.message} [${warning.code}]\n`;
}
