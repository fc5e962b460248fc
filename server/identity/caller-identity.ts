// Who STS says the caller is, parsed from GetCallerIdentity's answer.
import { AuthnError } from '../errors.js';

export type Partition = 'aws' | 'aws-us-gov' | 'aws-cn';

/** A verified AWS identity. */
export interface CallerIdentity {
  readonly arn: string;
  readonly partition: Partition;
  readonly accountId: string;
  /** AIDA… for users, AROA…:session for roles: stable across renames. */
  readonly userId: string;
  readonly kind: 'iam-user' | 'assumed-role';
  /** IAM user name, or role name for assumed roles. */
  readonly name: string;
  /** Assumed roles only. Attacker-chosen unless the role pins it (rule 7). */
  readonly sessionName?: string;
}

const NAME = /^[\w+=,.@-]{1,128}$/;

/**
 * Parses the STS answer. Anything that is not an IAM user or an assumed role
 * is refused: root must never get a certificate, and federated users are off
 * until policy can express them (rule 7).
 */
export function parseCallerIdentity(arn: string, account: string, userId: string, partition: Partition): CallerIdentity {
  const m = /^arn:(aws|aws-us-gov|aws-cn):(iam|sts)::(\d{12}):(.+)$/.exec(arn);
  if (!m) throw new AuthnError('AUTHN_STS_RESPONSE', 'STS returned an ARN of unknown form');
  const [, arnPartition, service, arnAccount, resource] = m as unknown as [string, string, string, string, string];
  if (arnPartition !== partition) throw new AuthnError('AUTHN_STS_RESPONSE', 'ARN partition does not match the STS endpoint');
  if (arnAccount !== account || !/^\d{12}$/.test(account)) throw new AuthnError('AUTHN_STS_RESPONSE', 'ARN account does not match Account');
  if (service === 'iam' && resource === 'root') throw new AuthnError('AUTHN_ROOT_REFUSED', 'the account root user never gets a certificate');
  const base = { arn, partition, accountId: account, userId };
  if (service === 'iam' && resource.startsWith('user/')) {
    const name = resource.split('/').at(-1)!;
    if (!NAME.test(name) || !/^AIDA[A-Z0-9]{12,124}$/.test(userId)) throw new AuthnError('AUTHN_STS_RESPONSE', 'malformed IAM user identity');
    return { ...base, kind: 'iam-user', name };
  }
  if (service === 'sts' && resource.startsWith('assumed-role/')) {
    const parts = resource.split('/');
    const [, role, session] = parts;
    if (parts.length !== 3 || !role || !session || !NAME.test(role) || !NAME.test(session)) throw new AuthnError('AUTHN_STS_RESPONSE', 'malformed assumed-role ARN');
    if (userId !== `${userId.split(':')[0]}:${session}` || !/^AROA[A-Z0-9]{12,124}:/.test(userId)) throw new AuthnError('AUTHN_STS_RESPONSE', 'UserId does not match the role session');
    return { ...base, kind: 'assumed-role', name: role, sessionName: session };
  }
  if (service === 'sts' && resource.startsWith('federated-user/')) throw new AuthnError('AUTHN_FEDERATED_REFUSED', 'federated users are not accepted');
  throw new AuthnError('AUTHN_IDENTITY_KIND', 'this kind of identity is not accepted');
}
