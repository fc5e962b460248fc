// The end of both issuing pipelines (user and host certificates): sign →
// verify → record → respond. One place, so the two kinds can never differ in
// what "no record, no certificate" means.
import type { FastifyRequest } from 'fastify';
import type { CertificateResponse } from '../../protocol/certificate-response.js';
import { PublicKeyError, fingerprintOf, parsePublicKeyLine, type SshPublicKey } from '../../protocol/ssh-public-key.js';
import type { RouteDeps } from '../app-deps.js';
import type { CertificateAuthority } from '../ca/certificate-authority.js';
import type { CertificateTemplate } from '../ca/certificate-template.js';
import { RequestError, UnavailableError } from '../errors.js';
import type { CallerIdentity } from '../identity/caller-identity.js';
import { auditContext } from './request-identity.js';

/** A public key from a request body, or 400 REQUEST_KEY_UNSUPPORTED / REQUEST_KEY_INVALID. */
export function parseRequestKey(line: string): SshPublicKey {
  try {
    return parsePublicKeyLine(line);
  } catch (err) {
    if (err instanceof PublicKeyError) {
      throw new RequestError(err.kind === 'unsupported' ? 'REQUEST_KEY_UNSUPPORTED' : 'REQUEST_KEY_INVALID', err.message, { cause: err });
    }
    throw err;
  }
}

/** Signs `template` with `ca`, commits the `issued` record, and only then returns the certificate. */
export async function issueRecorded(
  deps: RouteDeps,
  request: FastifyRequest,
  issue: { readonly ca: CertificateAuthority; readonly template: CertificateTemplate; readonly identity: CallerIdentity; readonly reason?: string; readonly policyRule?: string },
): Promise<CertificateResponse> {
  const { template, identity } = issue;
  const issued = await issue.ca.issue(template);
  try {
    // Rule 13: committed before the response; no record, no certificate.
    await deps.metrics.auditAppend(() => deps.audit.recordIssued({
      ...auditContext(deps, request),
      serial: template.serial,
      keyId: template.keyId,
      certificateType: template.kind,
      principals: template.principals,
      validAfter: template.validAfter,
      validBefore: template.validBefore,
      extensions: Object.keys(template.extensions).sort(),
      criticalOptions: template.criticalOptions,
      callerArn: identity.arn,
      accountId: identity.accountId,
      userId: identity.userId,
      publicKeyFingerprint: fingerprintOf(template.publicKey.blob),
      certificateFingerprint: issued.fingerprint,
      caFingerprint: issued.caFingerprint,
      ...(issue.reason !== undefined ? { reason: issue.reason } : {}),
      ...(issue.policyRule !== undefined ? { policyRule: issue.policyRule } : {}),
    }));
  } catch (cause) {
    throw new UnavailableError('UNAVAILABLE_STORE', 'the audit store is unavailable; no certificate was issued', { cause, retryAfterSeconds: 5 });
  }
  deps.metrics.issued(template.kind);
  request.log.info({ serial: template.serial.toString(), kind: template.kind, caller: identity.arn, principals: template.principals, rule: issue.policyRule }, 'certificate issued');
  return {
    certificate: issued.line,
    serial: template.serial.toString(),
    keyId: template.keyId,
    principals: template.principals,
    validAfter: new Date(template.validAfter * 1000).toISOString(),
    validBefore: new Date(template.validBefore * 1000).toISOString(),
  };
}
