// STS on top of SigV4: only `POST` GetCallerIdentity is served, answered in
// STS's JSON shapes. Used by /dev/sts and the STS test fixture.
import { verifySigV4Request, type ReceivedRequest, type SigV4Credential, type SigV4Verdict } from './sigv4-request-verifier.js';

/** Verifies a GetCallerIdentity request: signature (service sts), then action. */
export function verifyStsRequest(req: ReceivedRequest, options: { now: Date; region: string; lookup: (accessKeyId: string) => SigV4Credential | undefined }): SigV4Verdict {
  const verdict = verifySigV4Request(req, { ...options, service: 'sts' });
  if (!verdict.ok) return verdict;
  const params = new URLSearchParams(req.body.toString('utf8'));
  if (req.method !== 'POST' || params.get('Action') !== 'GetCallerIdentity' || params.get('Version') !== '2011-06-15') {
    return { ok: false, status: 400, code: 'InvalidAction', message: 'only GetCallerIdentity is served here' };
  }
  return verdict;
}

/** The JSON body STS sends for a successful GetCallerIdentity. */
export function callerIdentityJson(identity: { account: string; arn: string; userId: string }, requestId: string): object {
  return {
    GetCallerIdentityResponse: {
      GetCallerIdentityResult: { Account: identity.account, Arn: identity.arn, UserId: identity.userId },
      ResponseMetadata: { RequestId: requestId },
    },
  };
}

/** The JSON body STS sends for an error. */
export function stsErrorJson(code: string, message: string, requestId: string): object {
  return { Error: { Code: code, Message: message, Type: 'Sender' }, RequestId: requestId };
}
