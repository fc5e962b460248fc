// Host certificates, the client's half: `sshca config --write` trusts the
// server's host CA keys for the team's host patterns and installs its KRL as
// RevokedHostKeys; `sshca login` keeps both fresh; `sshca ssh` uses them with
// strict host key checking. No host is ever trusted on first use.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ClientError } from './client-error.js';
import {
  checkKrlFile, hostTrustPaths, knownHostsFile, parseHostCaList, readHostTrustState, replaceFile, writeHostTrustState,
  type HostTrustPaths, type HostTrustState,
} from './host-trust-files.js';
import { ServerApi } from './server-api.js';
import { hasManagedBlock, sshConfigBlock, sshConfigPath, writeManagedBlock, type HostTrustConfig } from './ssh-config-block.js';

/** What `sshca config` trusts (and, with --write, wrote). */
export interface HostTrustSetup {
  readonly sshConfig: string;
  /** The content of sshca's known_hosts file. */
  readonly knownHosts: string;
  readonly knownHostsPath: string;
  readonly hostCaKeys: number;
  /** The RevokedHostKeys file, when the block names it. */
  readonly revokedHostKeys?: string;
  /** Why RevokedHostKeys is not set yet (the KRL could not be fetched). */
  readonly warning?: { readonly code: string; readonly message: string };
}

/** What a refresh by `sshca login` did. */
export interface HostTrustRefresh {
  readonly knownHosts: 'updated' | 'unchanged';
  readonly revokedHostKeys: 'updated' | 'unchanged';
  /** One warning for whatever failed: the previous files stay in use. */
  readonly warning?: { readonly code: string; readonly message: string };
}

function hostTrustConfig(paths: HostTrustPaths, krlSaved: boolean): HostTrustConfig {
  return { knownHostsFiles: [paths.userKnownHosts, paths.knownHosts], ...(krlSaved ? { revokedHostKeys: paths.revokedHostKeys } : {}) };
}

/** The host CA keys, or undefined when the list is unchanged since `etag`. */
async function fetchHostCaKeys(api: ServerApi, etag: string | undefined): Promise<{ keys: string[]; etag: string | undefined } | undefined> {
  const r = await api.conditionalGet('/v1/ca/host.pub', etag);
  if (r.notModified) return undefined;
  return { keys: parseHostCaList(r.bytes.toString('utf8'), api.audience), etag: r.etag };
}

/** Fetches the KRL (host keys and host certificates included) and installs it when it changed. */
async function updateKrl(api: ServerApi, paths: HostTrustPaths, etag: string | undefined): Promise<{ changed: boolean; etag: string | undefined }> {
  // Without the file, a 304 would leave nothing to keep: ask for the bytes.
  const r = await api.conditionalGet('/v1/krl', existsSync(paths.revokedHostKeys) ? etag : undefined);
  if (r.notModified) return { changed: false, etag };
  return { changed: await replaceFile(paths.revokedHostKeys, r.bytes, 0o644, checkKrlFile), etag: r.etag };
}

/**
 * `sshca config`: the ssh_config block with host trust and the known_hosts
 * content for `patterns`; with `write`, installs them, the KRL and the state
 * `sshca login` refreshes from. A server without a host CA gets no
 * `@cert-authority` line. A KRL that cannot be fetched is not replaced by an
 * empty one: the block names RevokedHostKeys only once a real KRL is saved.
 */
export async function setUpHostTrust(options: { server: string; patterns: readonly string[]; home: string; privateKey: string; certificate: string; write: boolean }): Promise<HostTrustSetup> {
  const api = new ServerApi(options.server);
  const paths = hostTrustPaths(options.home);
  const ca = await fetchHostCaKeys(api, undefined);
  if (!ca) throw new ClientError('CLIENT_BAD_RESPONSE', `${api.audience} answered "not modified" to a request without a cached copy`);
  const knownHosts = knownHostsFile(api.audience, options.patterns, ca.keys);
  const block = (krlSaved: boolean) => sshConfigBlock({ hostPatterns: options.patterns, privateKey: options.privateKey, certificate: options.certificate, hostTrust: hostTrustConfig(paths, krlSaved) });
  const summary = { knownHosts, knownHostsPath: paths.knownHosts, hostCaKeys: ca.keys.length };
  // A preview names RevokedHostKeys only when the file is there: pasted without it, ssh would refuse every matching host.
  if (!options.write) return { ...summary, sshConfig: block(existsSync(paths.revokedHostKeys)), revokedHostKeys: paths.revokedHostKeys };

  await mkdir(dirname(paths.knownHosts), { recursive: true, mode: 0o700 });
  let previous: HostTrustState | undefined;
  try {
    previous = readHostTrustState(paths);
  } catch {
    previous = undefined;
  }
  // Another server's KRL says nothing about this server's hosts.
  if (previous && previous.server !== api.audience) await rm(paths.revokedHostKeys, { force: true });
  let krlEtag: string | undefined;
  let warning: HostTrustSetup['warning'];
  try {
    krlEtag = (await updateKrl(api, paths, undefined)).etag;
  } catch (err) {
    warning = { code: 'CLIENT_HOST_KRL_PENDING', message: `could not fetch the revocation list from ${api.audience} (${(err as Error).message}); RevokedHostKeys is left out of ~/.ssh/config until \`sshca login\` saves one` };
  }
  const krlSaved = existsSync(paths.revokedHostKeys);
  await replaceFile(paths.knownHosts, Buffer.from(knownHosts), 0o644);
  const sshConfig = block(krlSaved);
  await writeManagedBlock(paths.sshConfig, sshConfig);
  await writeHostTrustState(paths, {
    server: api.audience, patterns: options.patterns, privateKey: options.privateKey, certificate: options.certificate,
    ...(ca.etag ? { hostCaEtag: ca.etag } : {}), ...(krlEtag ? { krlEtag } : {}), revokedHostKeysInConfig: krlSaved,
  });
  return { ...summary, sshConfig, ...(krlSaved ? { revokedHostKeys: paths.revokedHostKeys } : {}), ...(warning ? { warning } : {}) };
}

/** `sshca config --remove`: the block out of ~/.ssh/config and sshca's host trust files gone. */
export async function removeHostTrust(home: string): Promise<string[]> {
  const paths = hostTrustPaths(home);
  await writeManagedBlock(paths.sshConfig, undefined);
  for (const f of [paths.state, paths.knownHosts, paths.revokedHostKeys]) await rm(f, { force: true });
  return [paths.sshConfig, paths.knownHosts, paths.revokedHostKeys, paths.state];
}

/**
 * `sshca login`: refreshes what `sshca config --write` set up, from the
 * server it was set up from. Never throws: on any failure the previous files
 * stay (ssh keeps working with them) and one warning says why.
 */
export async function refreshHostTrust(home: string): Promise<HostTrustRefresh | undefined> {
  const paths = hostTrustPaths(home);
  let state: HostTrustState | undefined;
  try {
    state = readHostTrustState(paths);
  } catch (err) {
    return { knownHosts: 'unchanged', revokedHostKeys: 'unchanged', warning: { code: 'CLIENT_HOST_TRUST_STALE', message: (err as Error).message } };
  }
  if (!state) return undefined;
  const api = new ServerApi(state.server, 10_000);
  const problems: string[] = [];
  const next = { ...state };
  let knownHosts: HostTrustRefresh['knownHosts'] = 'unchanged';
  let revokedHostKeys: HostTrustRefresh['revokedHostKeys'] = 'unchanged';
  await Promise.all([
    (async () => {
      try {
        const ca = await fetchHostCaKeys(api, existsSync(paths.knownHosts) ? state.hostCaEtag : undefined);
        if (!ca) return;
        if (await replaceFile(paths.knownHosts, Buffer.from(knownHostsFile(state.server, state.patterns, ca.keys)), 0o644)) knownHosts = 'updated';
        next.hostCaEtag = ca.etag;
      } catch (err) {
        problems.push(`host CA list: ${(err as Error).message}`);
      }
    })(),
    (async () => {
      try {
        const r = await updateKrl(api, paths, state.krlEtag);
        if (r.changed) revokedHostKeys = 'updated';
        next.krlEtag = r.etag;
      } catch (err) {
        problems.push(`revocation list: ${(err as Error).message}`);
      }
    })(),
  ]);
  try {
    // The first real KRL: now ~/.ssh/config may name it (unless the user took our block out).
    if (!state.revokedHostKeysInConfig && existsSync(paths.revokedHostKeys) && (await hasManagedBlock(paths.sshConfig))) {
      await writeManagedBlock(paths.sshConfig, sshConfigBlock({ hostPatterns: state.patterns, privateKey: state.privateKey, certificate: state.certificate, hostTrust: hostTrustConfig(paths, true) }));
      next.revokedHostKeysInConfig = true;
    }
    if (JSON.stringify(next) !== JSON.stringify(state)) await writeHostTrustState(paths, next as HostTrustState);
  } catch (err) {
    problems.push((err as Error).message);
  }
  const warning = problems.length
    ? { code: 'CLIENT_HOST_TRUST_STALE', message: `host trust not refreshed from ${state.server} (${problems.join('; ')}); ssh keeps using the host CA keys and revocation list saved before` }
    : undefined;
  return { knownHosts, revokedHostKeys, ...(warning ? { warning } : {}) };
}

/** ssh_config option names given with -o (lower case, as ssh compares them). */
function sshOptionNames(args: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = a === '-o' ? args[++i] : a.startsWith('-o') ? a.slice(2) : undefined;
    if (value) names.add(value.trim().split(/[\s=]/)[0]!.toLowerCase());
  }
  return names;
}

/**
 * The options `sshca ssh` adds once host trust is set up: sshca's
 * known_hosts beside the user's, the KRL once saved, and strict checking
 * when a host CA is trusted (a host without a certificate or a known key is
 * refused, never trusted on first use). An option the user gives wins.
 */
export function sshHostTrustOptions(home: string, sshArgs: readonly string[]): string[] {
  const paths = hostTrustPaths(home);
  let state: HostTrustState | undefined;
  try {
    state = readHostTrustState(paths);
  } catch {
    state = undefined;
  }
  if (!state) return [];
  const given = sshOptionNames(sshArgs);
  let trustsHostCa = false;
  try {
    trustsHostCa = /^@cert-authority /m.test(readFileSync(paths.knownHosts, 'utf8'));
  } catch {
    // no file: nothing trusted from sshca
  }
  const options: string[] = [];
  if (trustsHostCa && !given.has('stricthostkeychecking')) options.push('-o', 'StrictHostKeyChecking=yes');
  if (!given.has('userknownhostsfile')) options.push('-o', `UserKnownHostsFile=${hostTrustConfig(paths, false).knownHostsFiles.map(sshConfigPath).join(' ')}`);
  if (existsSync(paths.revokedHostKeys) && !given.has('revokedhostkeys')) options.push('-o', `RevokedHostKeys=${sshConfigPath(paths.revokedHostKeys)}`);
  return options;
}
