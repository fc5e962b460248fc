// Prepares the embedded default's data dir: CA key, dev AWS credentials,
// audience. Everything is created on first start and reused afterwards.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { readOrCreate } from '../persistent-file.js';
import type { DevIdentity } from './dev-sts.js';

export const DEV_PROFILE = 'sshca-dev';
export const DEV_ACCOUNT = '000000000000';

/** The dev data dir's files and the identity the dev STS vouches for. */
export interface DevEnvironment {
  readonly dataDir: string;
  readonly caKeyPath: string;
  readonly auditDbPath: string;
  readonly checkpointKeyPath: string;
  readonly credentialsPath: string;
  readonly policyPath: string;
  readonly audience: string;
  readonly identity: DevIdentity;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function randomId(length: number): string {
  return Array.from(randomBytes(length), (b) => BASE32[b % 32]).join('');
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
  // A per-data-dir audience: a token made for one dev server is useless at another.
  const audience = persistent(join(dataDir, 'audience'), () => `sshca-dev-${randomBytes(8).toString('hex')}`);
  // The dev policy: every dev user gets its own name, and the admin and
  // auditor roles. Written once; edit it and send SIGHUP to try policies.
  const policyPath = join(dataDir, 'policy.yaml');
  persistent(policyPath, () =>
    [
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
    ].join('\n'),
  );
  const userHash = createHash('sha256').update(devUser).digest();
  return {
    dataDir,
    caKeyPath: join(dataDir, 'ca', `user-${caKeyType}.pem`),
    auditDbPath: join(dataDir, 'audit.db'),
    checkpointKeyPath: join(dataDir, 'checkpoint-key.pem'),
    credentialsPath,
    policyPath,
    audience,
    identity: {
      accessKeyId,
      secretAccessKey,
      account: DEV_ACCOUNT,
      arn: `arn:aws:iam::${DEV_ACCOUNT}:user/${devUser}`,
      userId: `AIDA${Array.from(userHash.subarray(0, 16), (b) => BASE32[b % 32]).join('')}`,
    },
  };
}
