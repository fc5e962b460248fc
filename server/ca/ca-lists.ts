// The CA lists instances and clients trust (GET /v1/ca/user.pub, host.pub):
// active key first, then next (so instances trust it before it signs), then
// retired keys while any certificate they signed can still be valid.
import { fingerprintOf, toOpenSshLine, type SshPublicKey } from '../../protocol/ssh-public-key.js';
import type { AppDeps } from '../app-deps.js';
import { epochSeconds } from '../clock.js';
import type { Signer } from './signer.js';

/** How long a retired key's latest certificate expiry is reused before the store is asked again. */
const RETIRED_EXPIRY_CACHE_MS = 60_000;

type CaListDeps = Pick<AppDeps, 'userSigner' | 'userCaNext' | 'userCaRetired' | 'hostSigner' | 'hostCaNext' | 'hostCaRetired' | 'audit' | 'clock'>;

/** Builds the CA lists; costs no store access per request (rule 16). */
export class CaLists {
  // A retired key's latest expiry only changes while some replica still signs
  // with it (a rolling rotation), so asking once a minute is enough.
  private readonly expiries = new Map<string, { value: number | undefined; at: number }>();

  constructor(private readonly deps: CaListDeps) {}

  private async latestExpiry(fingerprint: string): Promise<number | undefined> {
    const now = this.deps.clock.now().getTime();
    const hit = this.expiries.get(fingerprint);
    if (hit && now - hit.at < RETIRED_EXPIRY_CACHE_MS) return hit.value;
    const value = await this.deps.audit.latestExpiry(fingerprint);
    this.expiries.set(fingerprint, { value, at: now });
    return value;
  }

  private async lines(kind: 'user' | 'host', active: Signer | undefined, next: SshPublicKey | undefined, retiredKeys: readonly SshPublicKey[] | undefined): Promise<string[]> {
    if (!active) return [];
    const now = epochSeconds(this.deps.clock);
    const retired: string[] = [];
    for (const key of retiredKeys ?? []) {
      const expiry = await this.latestExpiry(fingerprintOf(key.blob));
      if (expiry !== undefined && expiry > now) retired.push(toOpenSshLine(key, `sshca-${kind}-ca-retired`));
    }
    return [toOpenSshLine(active.publicKey(), `sshca-${kind}-ca`), ...(next ? [toOpenSshLine(next, `sshca-${kind}-ca-next`)] : []), ...retired];
  }

  /** The list's OpenSSH key lines. */
  keys(kind: 'user' | 'host'): Promise<string[]> {
    const d = this.deps;
    return kind === 'user' ? this.lines('user', d.userSigner, d.userCaNext, d.userCaRetired) : this.lines('host', d.hostSigner, d.hostCaNext, d.hostCaRetired);
  }

  /** The list as served: one key per line, or empty. */
  async text(kind: 'user' | 'host'): Promise<string> {
    const keys = await this.keys(kind);
    return keys.length ? `${keys.join('\n')}\n` : '';
  }
}
