// The live policy: loaded from a file at start-up, reloaded on SIGHUP. A
// reload that fails keeps the policy in force, so a typo never opens or
// closes the door by accident.
import { readFileSync } from 'node:fs';
import type { CallerIdentity } from '../identity/caller-identity.js';
import { FilePolicy } from './file-policy.js';
import { PolicyFileError, parsePolicyFile, type PolicyRole } from './policy-file.js';
import type { CertificateRequest, Policy, PolicyDecision } from './policy.js';

/** A Policy backed by a file, swappable as a whole. */
export class PolicyStore implements Policy {
  private constructor(
    private readonly path: string,
    private current: FilePolicy,
  ) {}

  /** Loads `path`; throws PolicyFileError naming line and field. */
  static load(path: string): PolicyStore {
    return new PolicyStore(path, PolicyStore.read(path));
  }

  private static read(path: string): FilePolicy {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new PolicyFileError(`${path}: cannot read: ${(err as Error).message}`);
    }
    return new FilePolicy(parsePolicyFile(text, path));
  }

  /** Re-reads the file; on any error the current policy stays and the error is returned. */
  reload(): { ok: true; rules: number } | { ok: false; error: PolicyFileError } {
    try {
      this.current = PolicyStore.read(this.path);
      return { ok: true, rules: this.current.document.rules.length };
    } catch (err) {
      if (err instanceof PolicyFileError) return { ok: false, error: err };
      throw err;
    }
  }

  decide(identity: CallerIdentity, request: CertificateRequest): PolicyDecision {
    return this.current.decide(identity, request);
  }

  rolesFor(identity: CallerIdentity): readonly PolicyRole[] {
    return this.current.rolesFor(identity);
  }

  /** The authenticator's account allowlist, following reloads. */
  readonly accounts = { has: (accountId: string): boolean => this.current.accountAllowed(accountId) };
}
