// Prepares the embedded default's data dir: CA key, dev AWS credentials,
// policy. (The audience is the server's own URL, set once it listens.) Everything is created on first start and reused afterwards.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readOrCreate } from '../persistent-file.js';
import type { DevIdentity } from './dev-sts.js';

export const DEV_PROFILE = 'sshca-dev';
export const DEV_ACCOUNT = '000000000000';

/** The dev data dir's files and the identity the dev STS vouches for. */
export interface DevEnvironment {
  readonly dataDir: string;
  readonly caKeyPath: string;
  /** The dev host CA (Ed25519): signs the dev instance's host certificates. */
  readonly hostCaKeyPath: string;
  readonly auditDbPath: string;
  readonly checkpointKeyPath: string;
  readonly credentialsPath: string;
  readonly policyPath: string;
  readonly identity: DevIdentity;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function randomId(length: number): string {
  return Array.from(randomBytes(length), (b) => BASE32[b % 32]).join('');
}

/**
 * The policy earlier versions generated: every identity of the dev account
 * an admin and auditor. Kept verbatim (with its trailing newline) so a data
 * dir that still holds exactly this text is upgraded; any edited file is the
 * operator's and is never touched.
 */
export const LEGACY_DEV_POLICY = `${[
  '# sshca dev policy, generated on first start. Edit it and send SIGHUP to reload (docs/policy.md).',
  `accounts: ['${DEV_ACCOUNT}']`,
  'rules:',
  '  - name: dev-user',
  '    match:',
  `      account: '${DEV_ACCOUNT}'`,
  "    principals: ['{{user}}']",
  '    ttl: 8h',
  '    maxTtl: 12h',
  '    roles: [admin, auditor]',
].join('\n')}\n`;

/**
 * The generated dev policy. Rule 17: the roles go to the dev user's own IAM
 * user ARN, never to the whole account; any other identity of the dev
 * account (after a --dev-user change) gets its own name and no role.
 */
export function devPolicy(devUserArn: string): string {
  return `${[
    ...devUserRules(devUserArn),
    '  # Host certificates for instances of the dev account (the dev instance is this machine).',
    'hosts:',
    '  ttl: 3d',
  ].join('\n')}\n`;
}

/** The dev policy before host certificates: replaced like the legacy one when untouched. */
export function previousDevPolicy(devUserArn: string): string {
  return `${devUserRules(devUserArn).join('\n')}\n`;
}

function devUserRules(devUserArn: string): string[] {
  return [
    '# sshca dev policy, generated on first start. Edit it and send SIGHUP to reload (docs/policy.md).',
    `accounts: ['${DEV_ACCOUNT}']`,
    'rules:',
    '  # Roles only for an identity a rule names: here the dev user.',
    '  - name: dev-user',
    '    match:',
    `      iamUser: '${devUserArn}'`,
    "    principals: ['{{user}}']",
    '    ttl: 8h',
    '    maxTtl: 12h',
    '    roles: [admin, auditor]',
    '  # Any other identity of the dev account: its own name, no role.',
    '  - name: dev-account',
    '    match:',
    `      account: '${DEV_ACCOUNT}'`,
    "    principals: ['{{user}}']",
    '    ttl: 8h',
    '    maxTtl: 12h',
  ];
}

/**
 * Writes the dev policy on first start, and replaces a policy an earlier
 * version generated (the legacy one, which the account-wide-roles check now
 * refuses; the one without host certificates) when the file is byte for byte
 * what that version wrote. Atomic: a reader sees the old
 * file or the new one, never half of either.
 */
function writeDevPolicy(path: string, content: string, generatedBefore: readonly string[]): void {
  try {
    // Compare sizes first: an edited (or enormous) file is never read here.
    const size = statSync(path).size;
    const candidates = generatedBefore.filter((text) => Buffer.byteLength(text) === size);
    if (candidates.length > 0 && candidates.includes(readFileSync(path, 'utf8'))) {
      const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
      writeFileSync(temporary, content, { mode: 0o600, flag: 'wx' });
      renameSync(temporary, path);
    }
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  try {
    writeFileSync(path, content, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another process just wrote it: theirs stands.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** A one-line value written on first start. */
function persistent(path: string, create: () => string): string {
  return readOrCreate(path, () => `${create()}\n`).trim();
}

/** Creates or reopens the data dir for `devUser`; one CA key file per key type, so switching types never clobbers a key. */
export function prepareDevEnvironment(dataDir: string, devUser: string, caKeyType: string): DevEnvironment {
  mkdirSync(join(dataDir, 'ca'), { recursive: true, mode: 0o700 });
  const credentialsPath = join(dataDir, 'aws-credentials');
  const credentials = persistent(credentialsPath, () =>
    [`[${DEV_PROFILE}]`, `aws_access_key_id = AKIA${randomId(16)}`, `aws_secret_access_key = ${randomBytes(30).toString('base64')}`].join('\n'),
  );
  const accessKeyId = /aws_access_key_id = (\S+)/.exec(credentials)?.[1];
  const secretAccessKey = /aws_secret_access_key = (\S+)/.exec(credentials)?.[1];
  if (!accessKeyId || !secretAccessKey) throw new Error(`${credentialsPath} is not a dev credentials file; remove it to regenerate`);
  const arn = `arn:aws:iam::${DEV_ACCOUNT}:user/${devUser}`;
  // The dev policy: the dev user gets its own name and the admin and auditor
  // roles. Written once; edit it and send SIGHUP to try policies.
  const policyPath = join(dataDir, 'policy.yaml');
  writeDevPolicy(policyPath, devPolicy(arn), [LEGACY_DEV_POLICY, previousDevPolicy(arn)]);
  const userHash = createHash('sha256').update(devUser).digest();
  return {
    dataDir,
    caKeyPath: join(dataDir, 'ca', `user-${caKeyType}.pem`),
    hostCaKeyPath: join(dataDir, 'ca', 'host-ed25519.pem'),
    auditDbPath: join(dataDir, 'audit.db'),
    checkpointKeyPath: join(dataDir, 'checkpoint-key.pem'),
    credentialsPath,
    policyPath,
    identity: {
      accessKeyId,
      secretAccessKey,
      account: DEV_ACCOUNT,
      arn,
      userId: `AIDA${Array.from(userHash.subarray(0, 16), (b) => BASE32[b % 32]).join('')}`,
    },
  };
}
