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
  get exitCode(): number {
    if (this.code === 'CLIENT_USAGE') return EXIT.usage;
    if (this.code === 'CLIENT_CLOCK_SKEW' || this.code === 'CLIENT_AUDIENCE_MISMATCH') return EXIT.refused;
    if (this.code === 'CLIENT_TLS_ERROR') return EXIT.unavailable;
    if (this.code.startsWith('AUTHN_') || this.code.startsWith('POLICY_') || this.code.startsWith('REQUEST_')) return EXIT.refused;
    if (this.code.startsWith('UNAVAILABLE_') || this.code === 'CLIENT_SERVER_UNREACHABLE' || this.code === 'INTERNAL_ERROR') return EXIT.unavailable;
    if (this.code.startsWith('CLIENT_CREDENTIALS') || this.code === 'CLIENT_NO_CREDENTIALS') return EXIT.credentials;
    return EXIT.local;
  }
}

/** A warning line, written like an error line (code last) but the command goes on. */
export function warningLine(warning: { readonly code: string; readonly message: string }): string {
  return `sshca: warning: ${warning.message} [${warning.code}]\n`;
}
