// CA lists signed so that `ssh-keygen -Y verify` (what instances run) accepts
// them from a trusted key and refuses them from any other.
import { join } from 'node:path';
import t from 'tap';
import { toOpenSshLine } from '../../../protocol/ssh-public-key.js';
import { CA_KEY_TYPES, LocalSigner } from '../../../server/ca/local-signer.js';
import { CA_LIST_NAMESPACE, signSshsig } from '../../../server/ca/sshsig.js';
import { startDevServer } from '../../fixtures/dev-server.js';
import { needsOpenSsh, sshsigVerifies } from '../../fixtures/openssh.js';

function verify(dir: string, allowed: string, message: string, signature: string, namespace = CA_LIST_NAMESPACE): boolean {
  return sshsigVerifies(dir, allowed, message, signature, namespace);
}

t.test('every CA key type signs lists ssh-keygen -Y verify accepts', needsOpenSsh, async (t) => {
  const dir = t.testdir();
  const stranger = LocalSigner.openOrCreate(join(dir, 'stranger.pem'), 'ed25519');
  for (const type of CA_KEY_TYPES) {
    const signer = LocalSigner.openOrCreate(join(dir, `${type}.pem`), type);
    const allowed = `sshca namespaces="${CA_LIST_NAMESPACE}" ${toOpenSshLine(signer.publicKey())}\n`;
    const list = `${toOpenSshLine(signer.publicKey(), 'sshca-user-ca')}\n`;
    const sig = await signSshsig(signer, CA_LIST_NAMESPACE, Buffer.from(list));
    t.equal(verify(dir, allowed, list, sig), true, `${type}: verifies`);
    t.equal(verify(dir, allowed, `${list}ssh-ed25519 AAAAevil\n`, sig), false, `${type}: a changed list does not`);
    t.equal(verify(dir, allowed, list, sig, 'file'), false, `${type}: not in another namespace`);
    t.equal(verify(dir, allowed, list, await signSshsig(stranger, CA_LIST_NAMESPACE, Buffer.from(list))), false, `${type}: a list signed by an unknown key is refused`);
  }
});

t.test('GET /v1/ca/user.pub.sig signs exactly what user.pub serves', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t);
  const list = await (await fetch(`${dev.url}/v1/ca/user.pub`)).text();
  const sig = await (await fetch(`${dev.url}/v1/ca/user.pub.sig`)).text();
  const dir = t.testdir();
  t.equal(verify(dir, `sshca namespaces="${CA_LIST_NAMESPACE}" ${list}`, list, sig), true);
  const hostList = await (await fetch(`${dev.url}/v1/ca/host.pub`)).text();
  const hostSig = await (await fetch(`${dev.url}/v1/ca/host.pub.sig`)).text();
  t.equal(verify(dir, `sshca namespaces="${CA_LIST_NAMESPACE}" ${hostList}`, hostList, hostSig), true, 'the dev host CA list is signed by the host CA');
});
