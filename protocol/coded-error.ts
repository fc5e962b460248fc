// The base of the command-line tools' errors: a stable code beside the
// plain-words message, and the cause kept for debugging.

/** An error with a stable `code` (what tests and scripts match on). */
export class CodedError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
  }
}
