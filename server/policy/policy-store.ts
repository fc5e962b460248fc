// The live policy: loaded from a file at start-up, reloaded on SIGHUP. A
// reload that fails keeps the policy in force, so a typo never opens or
// closes the door by accident — and never stops the server.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import type { CallerIdentity } from '../identity/caller-identity.js';
import { FilePolicy } from './file-policy.js';
import { MAX_POLICY_BYTES, PolicyFileError, parsePolicyFile, type HostRules, type PolicyRole } from './policy-file.js';
import type { CertificateRequest, Policy, PolicyDecision } from './policy.js';

/** A message for any thrown value, without trusting it to stringify. */
function describe(err: unknown): string {
  try {
    return err instanceof Error ? err.message : String(err);
  } catch {
    return 'unknown error';
  }
}

/**
 * Reads the policy file as UTF-8, refusing what is not a regular file of at
 * most MAX_POLICY_BYTES before anything is parsed. O_NONBLOCK: opening a
 * FIFO someone put in the file's place must not hang the server.
 */
export function readPolicyText(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    throw new PolicyFileError(`${path}: cannot read: ${describe(err)}`, { cause: err });
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new PolicyFileError(`${path}: not a regular file`);
    if (stat.size > MAX_POLICY_BYTES) throw new PolicyFileError(`${path}: ${stat.size} bytes; a policy file is at most ${MAX_POLICY_BYTES} bytes`);
    // Read at most one byte past the cap: a file that grows after fstat is still bounded.
    const buffer = Buffer.alloc(MAX_POLICY_BYTES + 1);
    let length = 0;
    for (let n = 1; n > 0 && length < buffer.length; length += n) n = readSync(fd, buffer, length, buffer.length - length, null);
    if (length > MAX_POLICY_BYTES) throw new PolicyFileError(`${path}: more than ${MAX_POLICY_BYTES} bytes; a policy file is at most ${MAX_POLICY_BYTES} bytes`);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(buffer.subarray(0, length));
    } catch (err) {
      throw new PolicyFileError(`${path}: not valid UTF-8`, { cause: err });
    }
  } catch (err) {
    if (err instanceof PolicyFileError) throw err;
    throw new PolicyFileError(`${path}: cannot read: ${describe(err)}`, { cause: err });
  } finally {
    closeSync(fd);
  }
}

/** A Policy backed by a file, swappable as a whole. */
export class PolicyStore implements Policy {
  private constructor(
    private readonly path: string,
    private current: FilePolicy,
  ) {}

  /** Loads `path`; every failure is a PolicyFileError (naming line and field where there is one). */
  static load(path: string): PolicyStore {
    return new PolicyStore(path, PolicyStore.read(path));
  }

  private static read(path: string): FilePolicy {
    try {
      return new FilePolicy(parsePolicyFile(readPolicyText(path), path));
    } catch (err) {
      if (err instanceof PolicyFileError) throw err;
      // Whatever else a hostile file makes a parser throw is still an invalid file.
      throw new PolicyFileError(`${path}: cannot load: ${describe(err)}`, { cause: err });
    }
  }

  /**
   * Re-reads the file; on any error the current policy stays and the error
   * is returned. Never throws: SIGHUP calls it, and an exception there would
   * take the whole server down over a file an operator is still editing.
   */
  reload(): { ok: true; rules: number } | { ok: false; error: PolicyFileError } {
    try {
      const next = PolicyStore.read(this.path);
      this.current = next;
      return { ok: true, rules: next.document.rules.length };
    } catch (err) {
      return { ok: false, error: err instanceof PolicyFileError ? err : new PolicyFileError(`${this.path}: cannot load: ${describe(err)}`, { cause: err }) };
    }
  }

  decide(identity: CallerIdentity, request: CertificateRequest): PolicyDecision {
    return this.current.decide(identity, request);
  }

  hostRules(): HostRules | undefined {
    return this.current.hostRules();
  }

  rolesFor(identity: CallerIdentity): readonly PolicyRole[] {
    return this.current.rolesFor(identity);
  }

  /** The authenticator's account allowlist, following reloads. */
  readonly accounts = { has: (accountId: string): boolean => this.current.accountAllowed(accountId) };
}
