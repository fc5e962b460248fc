// Every CA key the server publishes, whatever its state: what instances
// trust, and so what no request may ever revoke (rule 18).
import { fingerprintOf, type SshPublicKey } from '../../protocol/ssh-public-key.js';
import type { AppDeps } from '../app-deps.js';

type CaKeyDeps = Pick<AppDeps, 'userSigner' | 'userCaNext' | 'userCaRetired' | 'hostSigner' | 'hostCaNext' | 'hostCaRetired'>;

/** SHA256 fingerprint → wire blob of every user and host CA key: active, next and retired. */
export function publishedCaKeys(deps: CaKeyDeps): Map<string, Buffer> {
  const keys: Array<SshPublicKey | undefined> = [
    deps.userSigner.publicKey(),
    deps.userCaNext,
    ...(deps.userCaRetired ?? []),
    deps.hostSigner?.publicKey(),
    deps.hostCaNext,
    ...(deps.hostCaRetired ?? []),
  ];
  return new Map(keys.filter((k): k is SshPublicKey => k !== undefined).map((k) => [fingerprintOf(k.blob), k.blob]));
}
