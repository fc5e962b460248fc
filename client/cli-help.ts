// `sshca <command> --help` and `sshca --version`: what each command takes,
// where its settings come from, in the words docs/client.md uses.
import { readFileSync } from 'node:fs';

/** Set by the bundler (scripts/bundle-cli.mjs) from client/package.json; absent in the tsc build. */
declare const SSHCA_VERSION: string | undefined;

/** The client's version: the bundle's, else the package.json beside the tsc build (dist/client → ../../). */
export function clientVersion(): string {
  if (typeof SSHCA_VERSION === 'string') return SSHCA_VERSION;
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

const SETTINGS = `settings: flags, then SSHCA_SERVER / AWS_PROFILE, then ~/.config/sshca/config.json
  {"server", "profile", "key", "hostPatterns"} (the first successful login saves --server and --profile)`;

const COMMON = {
  server: '  --server URL        the sshca server (https://…; http only for a loopback address)',
  profile: '  --profile P         the AWS profile to prove who you are with (default: the SDK\'s chain)',
  key: '  --key PATH          your private key (default ~/.ssh/sshca/id_ed25519; made on first login)',
  json: '  --json              machine-readable output',
};

/** Per-command help: synopsis, every flag, and where settings come from. */
export const COMMAND_HELP: Readonly<Record<string, string>> = {
  login: [
    'sshca login: get a certificate for your key, signed by the sshca server after it checked your AWS identity',
    COMMON.server, COMMON.profile, COMMON.key,
    '  --principal P       ask for this principal (repeatable; default: all the policy gives you)',
    '  --ttl DURATION      lifetime, e.g. 8h (at most what the policy allows)',
    '  --reason TEXT       recorded with the certificate on the audit record',
    '  --no-agent          do not load the certificate into ssh-agent',
    '  --no-save           do not remember --server / --profile in the settings file',
    '  --quiet             print nothing on success',
    COMMON.json, SETTINGS,
  ].join('\n'),
  status: [
    'sshca status: your certificate, read locally (no AWS; no network unless --check-revocation)',
    COMMON.key,
    '  --min-valid D       exit 1 unless it stays valid at least this long (e.g. 10m)',
    "  --check-revocation  also ask the server's KRL (cached by ETag) whether it is revoked",
    '  --server URL        the sshca server, for --check-revocation',
    '  --quiet             print nothing; the exit status says it (0 valid, 1 not)',
    COMMON.json, SETTINGS,
  ].join('\n'),
  ssh: [
    'sshca ssh [FLAGS] [--] SSH-ARGS...: ssh with your certificate and the server\'s host CA, logging in first when needed',
    COMMON.server, COMMON.profile, COMMON.key,
    '  everything else goes to ssh unchanged; the exit status is ssh\'s',
    SETTINGS,
  ].join('\n'),
  config: [
    'sshca config: print (or write to ~/.ssh/config) the block that makes plain ssh use sshca for your hosts',
    COMMON.server, COMMON.key,
    "  --host 'P1,P2'      the hosts sshca is for (ssh patterns; remembered as hostPatterns)",
    '  --all-hosts         every host (Match host *): only when really meant',
    '  --write             write the block (and host CA trust, revoked host keys) once',
    '  --remove            take the block out again',
    COMMON.json, SETTINGS,
  ].join('\n'),
  logout: ['sshca logout: remove your certificate (and unload it from ssh-agent)', COMMON.key, COMMON.json, SETTINGS].join('\n'),
  ca: ['sshca ca: print the CA public keys the server publishes', COMMON.server, '  --host              the host CA keys instead of the user CA keys', COMMON.json, SETTINGS].join('\n'),
  revoke: [
    'sshca revoke (admin role): revoke a certificate or key, or withdraw a revocation; instances pick it up at their next KRL refresh',
    '  --serial N | --key-id ID | --public-key FILE | --withdraw ID   exactly one',
    '  --reason TEXT       required: it goes on the audit record',
    COMMON.server, COMMON.profile, COMMON.json, SETTINGS,
  ].join('\n'),
  audit: [
    'sshca audit (auditor role): read, verify and anchor the tamper-evident audit record',
    '  list    [--kind K] [--principal P] [--caller ARN|NAME] [--account ID] [--serial N] [--fingerprint SHA256:…]',
    '          [--since T] [--until T] [--limit N] [--before SEQ] [--csv]   T: 2h, 7d, 2026-11-01 or ISO 8601 with a zone',
    '  active  [--principal P] [--caller ARN|NAME] [--limit N] [--csv]   certificates valid now and not revoked',
    '  export  [--output FILE] [--since T]  NDJSON, ending in a signed head (partial with --since)',
    '  verify  [--file FILE --checkpoint-key JWK-FILE] [--anchors DIR]   checks anchors too (AUDIT_TRUNCATED)',
    '  anchor                               publish the chain head to the anchor store now (admin role)',
    COMMON.server, COMMON.profile, COMMON.json, SETTINGS,
  ].join('\n'),
};

/** Whether `args` asks for help (`--help` or `-h` anywhere before a `--`). */
export function wantsHelp(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}
