// Who STS says the caller is, parsed from GetCallerIdentity's answer
// (rule 7). Everything here comes from STS, but is still parsed as if it
// were hostile: a lenient parse is how look-alike names get through.
import { AuthnError } from '../errors.js';

export type Partition = 'aws' | 'aws-us-gov' | 'aws-cn';

/** A verified AWS identity. */
export interface CallerIdentity {
  readonly arn: string;
  readonly partition: Partition;
  readonly accountId: string;
  /** AIDA… for users, AROA…:session for roles: stable across renames. */
  readonly userId: string;
  readonly kind: 'iam-user' | 'assumed-role' | 'federated-user' | 'ec2-instance';
  /** IAM user name, role name, or federated user name. */
  readonly name: string;
  /** Assumed roles: `arn:<partition>:iam::<account>:role/<name>` (the path is not in the ARN STS returns). */
  readonly roleArn?: string;
  /** Assumed roles and federated users: the session name. */
  readonly sessionName?: string;
  /** Instance identity roles: the instance id, which AWS sets and nobody can choose. */
  readonly instanceId?: string;
  /** IAM Identity Center sessions: the permission set name. */
  readonly ssoPermissionSet?: string;
  /**
   * Whether sessionName names the person. True for Identity Center roles
   * (AWS sets it to the user name) and roles the operator says pin
   * `sts:RoleSessionName`; otherwise whoever assumed the role chose it.
   */
  readonly sessionTrusted: boolean;
}

/** What the operator configured about identities. */
export interface IdentityRules {
  /** Role ARNs (`arn:…:iam::…:role/NAME`) whose trust policy pins the session name. */
  readonly trustedSessionRoles: ReadonlySet<string>;
  /** Federated (GetFederationToken) users are refused unless this is set. */
  readonly allowFederatedUsers: boolean;
}

const NAME = /^[\w+=,.@-]{1,128}$/;
const SESSION = /^[\w+=,.@-]{2,64}$/;
/**
 * `AWSReservedSSO_<permission set>_<16 hex>`, anchored at both ends. The set
 * name may itself contain `_`, so the hex suffix is what delimits it:
 * `AWSReservedSSO_Admin_Prod_0123…` is set `Admin_Prod`, never `Admin`.
 */
const SSO_ROLE = /^AWSReservedSSO_([\w+=,.@-]{1,32})_([0-9a-f]{16})$/;

/** The role name AWS gives every instance's identity role; no customer role can have it (IAM names never contain `:`). */
export const INSTANCE_IDENTITY_ROLE = 'aws:ec2-instance';
/** An EC2 instance id: `i-` and 8 (older instances) or 17 lower-case hex digits. */
export const INSTANCE_ID = /^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;

function malformed(what: string): AuthnError {
  return new AuthnError('AUTHN_STS_RESPONSE', `STS answer has a malformed ${what}`);
}

/** Parses the STS answer; refuses root always and federated users unless allowed. */
export function parseCallerIdentity(arn: string, account: string, userId: string, partition: Partition, rules: IdentityRules): CallerIdentity {
  if (!/^\d{12}$/.test(account)) throw malformed('Account');
  const m = /^arn:(aws|aws-us-gov|aws-cn):(iam|sts)::(\d{12}):([^\s]+)$/.exec(arn);
  if (!m) throw malformed('Arn');
  const [, arnPartition, service, arnAccount, resource] = m as unknown as [string, string, string, string, string];
  if (arnPartition !== partition) throw new AuthnError('AUTHN_STS_RESPONSE', 'ARN partition does not match the STS endpoint');
  if (arnAccount !== account) throw new AuthnError('AUTHN_STS_RESPONSE', 'ARN account does not match Account');
  const base = { arn, partition: partition, accountId: account, userId };

  if (service === 'iam' && resource === 'root') {
    if (userId !== account) throw malformed('root UserId');
    throw new AuthnError('AUTHN_ROOT_REFUSED', 'the account root user never gets a certificate');
  }
  if (service === 'iam' && resource.startsWith('user/')) {
    const name = resource.split('/').at(-1)!;
    if (!NAME.test(name) || !/^AIDA[A-Z0-9]{12,124}$/.test(userId)) throw malformed('IAM user identity');
    return { ...base, kind: 'iam-user', name, sessionTrusted: false };
  }
  if (resource.startsWith(`assumed-role/${INSTANCE_IDENTITY_ROLE}/`)) return instanceIdentity(base, service, resource, userId, account);
  if (service === 'sts' && resource.startsWith('assumed-role/')) {
    const parts = resource.split('/');
    const [, role, session] = parts;
    if (parts.length !== 3 || !role || !session || !NAME.test(role) || !SESSION.test(session)) throw malformed('assumed-role ARN');
    // UserId is `<role id>:<session>`; both halves must agree with the ARN.
    const idMatch = /^(AROA[A-Z0-9]{12,124}):(.+)$/.exec(userId);
    if (!idMatch || idMatch[2] !== session) throw malformed('role UserId');
    const roleArn = `arn:${partition}:iam::${account}:role/${role}`;
    const sso = SSO_ROLE.exec(role);
    return {
      ...base,
      kind: 'assumed-role',
      name: role,
      roleArn,
      sessionName: session,
      ...(sso ? { ssoPermissionSet: sso[1]! } : {}),
      sessionTrusted: sso !== null || rules.trustedSessionRoles.has(roleArn),
    };
  }
  if (service === 'sts' && resource.startsWith('federated-user/')) {
    const name = resource.slice('federated-user/'.length);
    if (!SESSION.test(name) || userId !== `${account}:${name}`) throw malformed('federated user identity');
    if (!rules.allowFederatedUsers) throw new AuthnError('AUTHN_FEDERATED_REFUSED', 'federated users are not accepted');
    return { ...base, kind: 'federated-user', name, sessionName: name, sessionTrusted: false };
  }
  throw new AuthnError('AUTHN_IDENTITY_KIND', 'this kind of identity is not accepted');
}

/**
 * An instance identity role (issue 12): `assumed-role/aws:ec2-instance/<id>`,
 * matched exactly. STS answers with service `sts`; AWS's documentation writes
 * `iam`, so both are accepted — the role name is what no customer can forge.
 * UserId is `<role id>:<id>` or, as documented, `<account>:aws:ec2-instance:<id>`;
 * either way it must end with the same instance id.
 */
function instanceIdentity(base: Pick<CallerIdentity, 'arn' | 'partition' | 'accountId' | 'userId'>, service: string, resource: string, userId: string, account: string): CallerIdentity {
  const instanceId = resource.slice(`assumed-role/${INSTANCE_IDENTITY_ROLE}/`.length);
  if (!INSTANCE_ID.test(instanceId)) throw malformed('instance identity ARN');
  const idOk = new RegExp(`^(?:AROA[A-Z0-9]{12,124}|${account}:${INSTANCE_IDENTITY_ROLE}):${instanceId}$`).test(userId);
  if (!idOk || (service !== 'sts' && service !== 'iam')) throw malformed('instance identity UserId');
  return { ...base, kind: 'ec2-instance', name: INSTANCE_IDENTITY_ROLE, instanceId, sessionName: instanceId, sessionTrusted: false };
}
