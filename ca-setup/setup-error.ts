// sshca-setup's failures, each with a code and an exit status.
import { CodedError } from '../protocol/coded-error.js';
import { UnavailableError } from '../server/errors.js';

/** A failure sshca-setup reports in plain words. */
export class SetupError extends CodedError {
  /** 2 usage, 3 KMS refused, 4 KMS unreachable, 5 credentials. */
  get exitCode(): number {
    if (this.code === 'SETUP_USAGE') return 2;
    if (this.code === 'SETUP_CREDENTIALS') return 5;
    if (this.code === 'SETUP_KMS_UNREACHABLE') return 4;
    return 3;
  }
}

const CREDENTIAL_ERRORS = new Set(['CredentialsProviderError', 'UnrecognizedClientException', 'InvalidClientTokenId', 'InvalidSignatureException', 'SignatureDoesNotMatch', 'ExpiredTokenException']);

/** Turns an AWS SDK or signer failure into a SetupError that says what to do. */
export function setupErrorFrom(err: unknown, action: string): SetupError {
  if (err instanceof SetupError) return err;
  if (err instanceof UnavailableError) {
    const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
    const code = { UNAVAILABLE_KMS: 'SETUP_KMS_UNREACHABLE', UNAVAILABLE_KMS_CREDENTIALS: 'SETUP_CREDENTIALS' }[err.code] ?? err.code.replace('UNAVAILABLE_', 'SETUP_');
    return new SetupError(code, `${err.message}${cause}`, { cause: err });
  }
  const e = err as { name?: string; message?: string; code?: string };
  if (CREDENTIAL_ERRORS.has(e.name ?? '')) {
    return new SetupError('SETUP_CREDENTIALS', `no usable AWS credentials to ${action}: ${e.message} (set AWS_PROFILE, or run aws sso login)`, { cause: err });
  }
  if (e.name === 'AccessDeniedException') {
    return new SetupError('SETUP_ACCESS_DENIED', `your AWS identity may not ${action}: ${e.message}`, { cause: err });
  }
  if (e.name === 'NotFoundException') return new SetupError('SETUP_KEY_NOT_FOUND', `${e.message}`, { cause: err });
  if (['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'TimeoutError'].includes(e.code ?? e.name ?? '')) {
    return new SetupError('SETUP_KMS_UNREACHABLE', `cannot reach KMS to ${action}: ${e.message}`, { cause: err });
  }
  return new SetupError('SETUP_KMS_ERROR', `KMS refused to ${action}: ${e.name ?? 'Error'}: ${e.message ?? String(err)}`, { cause: err });
}
