// A worker thread that makes load items: a fresh Ed25519 user key per
// request (as each engineer has their own), and a token signed by the real
// client signer (client/identity-token-signer.ts). Run off the main thread so
// that a soak can keep signing without stalling the load generator's loop.
import { generateKeyPairSync } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { IdentityTokenSigner } from '../../client/identity-token-signer.js';
import { publicKeyFromKeyObject, toOpenSshLine } from '../../protocol/ssh-public-key.js';
import type { LoadItem } from './load-generator.js';
import type { TokenTarget } from './token-source.js';

/** Asks for `count` items; item k is signed for target (first + k) mod targets. */
export interface SignRequest {
  readonly id: number;
  readonly targets: readonly TokenTarget[];
  readonly first: number;
  readonly count: number;
}

export type SignReply = { readonly id: number; readonly items: LoadItem[] } | { readonly id: number; readonly error: string };

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const signers = new Map<string, IdentityTokenSigner>();
const signerFor = (t: TokenTarget) => {
  const key = `${t.credentials.accessKeyId}`;
  return signers.get(key) ?? signers.set(key, new IdentityTokenSigner({ credentials: t.credentials })).get(key)!;
};

parentPort!.on('message', (req: SignRequest) => {
  void (async (): Promise<SignReply> => {
    try {
      const items: LoadItem[] = [];
      for (let k = 0; k < req.count; k++) {
        const target = (req.first + k) % req.targets.length;
        const t = req.targets[target]!;
        const body = JSON.stringify({ publicKey: toOpenSshLine(publicKeyFromKeyObject(generateKeyPairSync('ed25519').publicKey)) });
        const token = await signerFor(t).sign({ endpoint: t.endpoint, audience: t.audience, method: 'POST', pathAndQuery: '/v1/certs/user', body });
        items.push({ target, body, token });
      }
      return { id: req.id, items };
    } catch (err) {
      return { id: req.id, error: (err as Error).message };
    }
  })().then((reply) => parentPort!.postMessage(reply));
});
