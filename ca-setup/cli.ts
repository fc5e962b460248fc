// `sshca-setup`: create, export, check and write the IAM policy for CA keys
// in KMS. The operator's own AWS credentials are used (default chain).
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KMSClient } from '@aws-sdk/client-kms';
import { fingerprintOf, publicKeyFromKeyObject, toOpenSshLine } from '../protocol/ssh-public-key.js';
import { CertificateAuthority } from '../server/ca/certificate-authority.js';
import { DEFAULT_USER_EXTENSIONS, keyIdFor, randomSerial } from '../server/ca/certificate-template.js';
import { KmsSigner } from '../server/ca/kms-signer.js';
import { EC2_ROLE_TEMPLATE } from '../server/hosts/ec2-role.js';
import { CA_KEY_SPECS } from './ca-key-spec.js';
import { createCaKey } from './create-ca-key.js';
import { ec2ReadRolePolicy, iamPolicyFor } from './iam-policy.js';
import { SetupError, setupErrorFrom } from './setup-error.js';

export const USAGE = `usage:
  sshca-setup create --kind user|host [--key-spec ${Object.keys(CA_KEY_SPECS).join('|')}] --alias alias/NAME
  sshca-setup export --key KEY            OpenSSH public key line (stdout) and SHA256 fingerprint (stderr)
  sshca-setup check  --key KEY            sign a test certificate through KMS and verify it
  sshca-setup policy --key KEY [--key KEY] [--hosts [--ec2-role ARN]] [--anchors s3://BUCKET/PREFIX/]
                                          least-privilege IAM policy for the sshca server role;
                                          --hosts adds what host certificates need (ec2:DescribeInstances,
                                          or with --ec2-role arn:aws:iam::{account}:role/NAME, sts:AssumeRole of it);
                                          --anchors adds writing audit anchors under that prefix (no delete)
  sshca-setup ec2-read-role-policy        the permission policy of that read role in each member account
KEY is a key ARN (recommended) or alias/NAME. Common: [--region R] [--profile P] [--endpoint URL] [--json]
exit codes: 0 ok, 2 usage, 3 KMS refused, 4 KMS unreachable, 5 AWS credentials`;

interface Io {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  readonly env: NodeJS.ProcessEnv;
}

function kmsClient(o: { region?: string; profile?: string; endpoint?: string }, key: string | undefined, env: NodeJS.ProcessEnv): KMSClient {
  const region = o.region ?? /^arn:[\w-]+:kms:([\w-]+):/.exec(key ?? '')?.[1] ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (!region) throw new SetupError('SETUP_USAGE', 'no region: pass --region, use a key ARN, or set AWS_REGION');
  const endpoint = o.endpoint ?? env.SSHCA_KMS_ENDPOINT;
  return new KMSClient({
    region,
    ...(o.profile ? { profile: o.profile } : {}),
    ...(endpoint ? { endpoint } : {}),
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 3000, requestTimeout: 10_000, throwOnRequestTimeout: true },
  });
}

async function openKey(kms: KMSClient, key: string): Promise<KmsSigner> {
  try {
    return await KmsSigner.open({ kms, keyRef: key });
  } catch (err) {
    throw setupErrorFrom(err, `read key ${key}`);
  }
}

/** Issues a throwaway certificate through KMS; ssh-keygen -L judges it when installed. */
async function check(signer: KmsSigner): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const serial = randomSerial();
  const issued = await new CertificateAuthority({ signer }).issue({
    kind: 'user', publicKey: publicKeyFromKeyObject(generateKeyPairSync('ed25519').publicKey), serial, keyId: keyIdFor('sshca-setup-check', serial),
    principals: ['sshca-check'], validAfter: now - 60, validBefore: now + 60, criticalOptions: {}, extensions: DEFAULT_USER_EXTENSIONS,
  });
  const dir = mkdtempSync(join(tmpdir(), 'sshca-check-'));
  try {
    writeFileSync(join(dir, 'check-cert.pub'), `${issued.line}\n`);
    execFileSync('ssh-keygen', ['-L', '-f', join(dir, 'check-cert.pub')], { stdio: 'ignore' });
    return 'signature verified locally and by ssh-keygen -L';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'signature verified locally (ssh-keygen not installed)';
    throw new SetupError('SETUP_CHECK_FAILED', 'ssh-keygen refused the test certificate', { cause: err });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function run(argv: readonly string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  let parsed;
  try {
    parsed = parseArgs({
      args: [...rest],
      strict: true,
      options: {
        kind: { type: 'string' }, 'key-spec': { type: 'string' }, alias: { type: 'string' }, key: { type: 'string', multiple: true },
        region: { type: 'string' }, profile: { type: 'string' }, endpoint: { type: 'string' }, json: { type: 'boolean' },
        hosts: { type: 'boolean' }, 'ec2-role': { type: 'string' }, anchors: { type: 'string' },
      },
    });
  } catch (err) {
    throw new SetupError('SETUP_USAGE', (err as Error).message);
  }
  const o = parsed.values;
  const print = (json: object, text: string) => io.stdout(o.json ? `${JSON.stringify(json)}\n` : text);
  const oneKey = (): string => {
    if (o.key?.length !== 1) throw new SetupError('SETUP_USAGE', `${command} needs exactly one --key`);
    return o.key[0]!;
  };
  switch (command) {
    case 'create': {
      if (o.kind !== 'user' && o.kind !== 'host') throw new SetupError('SETUP_USAGE', '--kind must be user or host');
      const keySpec = CA_KEY_SPECS[o['key-spec'] ?? 'ed25519'];
      if (!keySpec) throw new SetupError('SETUP_USAGE', `--key-spec must be one of ${Object.keys(CA_KEY_SPECS).join(', ')}`);
      if (!o.alias || !/^alias\/[a-zA-Z0-9/_-]{1,250}$/.test(o.alias) || o.alias.startsWith('alias/aws/')) throw new SetupError('SETUP_USAGE', '--alias must look like alias/sshca-user-ca');
      const kms = kmsClient(o, undefined, io.env);
      const result = await createCaKey(kms, { kind: o.kind, keySpec, alias: o.alias }).catch((err: unknown) => {
        throw setupErrorFrom(err, `create a KMS key (kms:CreateKey, kms:CreateAlias, kms:TagResource, kms:ListAliases, kms:ListResourceTags)`);
      });
      print(result, `${result.created ? 'created' : 'exists'}: ${result.keyArn} (${result.keySpec}) as ${result.alias}\nnext: sshca-setup export --key ${result.keyArn}\n`);
      return 0;
    }
    case 'export': {
      const key = oneKey();
      const signer = await openKey(kmsClient(o, key, io.env), key);
      const pub = signer.publicKey();
      const fingerprint = fingerprintOf(pub.blob);
      if (o.json) print({ keyArn: signer.keyArn, keySpec: signer.keySpec, publicKey: toOpenSshLine(pub), fingerprint }, '');
      else {
        io.stdout(`${toOpenSshLine(pub, 'sshca-ca')}\n`);
        io.stderr(`${fingerprint} ${signer.keyArn}\n`);
      }
      return 0;
    }
    case 'check': {
      const key = oneKey();
      const signer = await openKey(kmsClient(o, key, io.env), key);
      const verdict = await check(signer).catch((err: unknown) => {
        throw setupErrorFrom(err, `sign with ${signer.keyArn} (kms:Sign)`);
      });
      print({ keyArn: signer.keyArn, keySpec: signer.keySpec, fingerprint: fingerprintOf(signer.publicKey().blob), ok: true }, `ok: ${signer.keyArn} (${signer.keySpec}) ${verdict}\n`);
      return 0;
    }
    case 'policy': {
      if (!o.key?.length) throw new SetupError('SETUP_USAGE', 'policy needs at least one --key');
      const keys = [];
      for (const key of o.key) {
        const signer = await openKey(kmsClient(o, key, io.env), key);
        keys.push({ keyArn: signer.keyArn, keySpec: signer.keySpec });
      }
      const ec2Role = o['ec2-role'];
      if (ec2Role !== undefined && (!o.hosts || !EC2_ROLE_TEMPLATE.test(ec2Role))) {
        throw new SetupError('SETUP_USAGE', '--ec2-role goes with --hosts and looks like arn:aws:iam::{account}:role/NAME (as SSHCA_EC2_ROLE)');
      }
      // --anchors s3://BUCKET/PREFIX/ (as SSHCA_AUDIT_ANCHOR): the bucket in the keys' partition.
      const anchor = o.anchors === undefined ? undefined : /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/((?:[A-Za-z0-9_-][A-Za-z0-9._-]*\/)*)$/.exec(o.anchors);
      if (o.anchors !== undefined && !anchor) throw new SetupError('SETUP_USAGE', '--anchors looks like s3://BUCKET/PREFIX/ (as SSHCA_AUDIT_ANCHOR; the prefix ends in /)');
      const partition = /^arn:([\w-]+):/.exec(keys[0]!.keyArn)?.[1] ?? 'aws';
      const anchors = anchor ? { bucketArn: `arn:${partition}:s3:::${anchor[1]}`, prefix: anchor[2]! } : undefined;
      io.stdout(`${JSON.stringify(iamPolicyFor(keys, o.hosts ? (ec2Role ? { ec2Role } : {}) : undefined, anchors), null, 2)}\n`);
      return 0;
    }
    case 'ec2-read-role-policy':
      io.stdout(`${JSON.stringify(ec2ReadRolePolicy(), null, 2)}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
      io.stdout(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    default:
      throw new SetupError('SETUP_USAGE', `unknown command ${JSON.stringify(command)}`);
  }
}

/** Runs `sshca-setup <argv>`; returns the exit code. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  try {
    return await run(argv, io);
  } catch (err) {
    const e = setupErrorFrom(err, 'complete the request');
    io.stderr(`sshca-setup: ${e.message} [${e.code}]\n`);
    if (e.code === 'SETUP_USAGE') io.stderr(`${USAGE}\n`);
    return e.exitCode;
  }
}
