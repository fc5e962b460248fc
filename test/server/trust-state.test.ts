// GET /v1/trust-state (rule 19): one statement names the CA lists and the
// KRL by hash with versions that only move forward, signed (SSHSIG) by the
// active user CA key, checked here by ssh-keygen itself.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import t from 'tap';
import { CheckpointSigner } from '../../server/audit/checkpoint-signer.js';
import { SqliteAuditLog } from '../../server/audit/sqlite-audit-log.js';
import { KRL_RECHECK_MS } from '../../server/revocation/krl-cache.js';
import { ShiftableClock, startDevServer, type DevServer } from '../fixtures/dev-server.js';
import { needsOpenSsh, sshsigVerifies } from '../fixtures/openssh.js';

const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

async function state(dev: DevServer): Promise<{ text: string; signature: string; fields: Record<string, string> }> {
  const body = await (await fetch(`${dev.url}/v1/trust-state`)).text();
  const at = body.indexOf('-----BEGIN SSH SIGNATURE-----');
  const text = body.slice(0, at);
  const fields = Object.fromEntries(text.trim().split('\n').map((l) => l.split(' ') as [string, string]));
  return { text, signature: body.slice(at), fields };
}

/** ssh-keygen -Y verify with the served user CA list as the allowed signers. */
function verifies(dir: string, caList: string, text: string, signature: string, namespace = 'sshca-trust-state'): boolean {
  const allowed = caList.trim().split('\n').map((l) => `sshca namespaces="${namespace}" ${l.split(' ').slice(0, 2).join(' ')}`).join('\n') + '\n';
  return sshsigVerifies(dir, allowed, text, signature, namespace);
}

t.test('the statement names the lists by hash, is signed by the CA, and its versions move forward', needsOpenSsh, async (t) => {
  const clock = new ShiftableClock();
  const dev = await startDevServer(t, { clock });
  const dir = t.testdir();
  const caList = await (await fetch(`${dev.url}/v1/ca/user.pub`)).text();
  const krl = Buffer.from(await (await fetch(`${dev.url}/v1/krl`)).arrayBuffer());
  const first = await state(dev);
  t.equal(first.text.split('\n')[0], 'sshca-trust-state 1');
  t.equal(first.fields['user-ca-sha256'], sha256(caList), 'the user CA list, by hash');
  t.equal(first.fields['host-ca-sha256'], sha256(await (await fetch(`${dev.url}/v1/ca/host.pub`)).text()), 'the host CA list, by hash');
  t.equal(first.fields['krl-sha256'], sha256(krl), 'the KRL, by hash');
  t.equal(first.fields['krl-version'], '0');
  t.equal(Number(first.fields['issued-at']) % 60, 0, 'issued-at in whole minutes');
  t.ok(verifies(dir, caList, first.text, first.signature), 'ssh-keygen -Y verify accepts it');
  t.notOk(verifies(dir, caList, first.text.replace('krl-version 0', 'krl-version 9'), first.signature), 'an edited statement does not verify');
  // Namespaces keep the two kinds of signature apart.
  const listSig = await (await fetch(`${dev.url}/v1/ca/user.pub.sig`)).text();
  t.notOk(verifies(dir, caList, first.text, listSig), 'a CA-list signature is no trust-state signature');
  t.notOk(verifies(dir, caList, caList, first.signature, 'sshca-ca-list'), 'and the other way round');

  const again = await state(dev);
  t.equal(again.signature, first.signature, 'the same minute, the same state: the signature is reused, not made again');

  // A revocation (made by another replica on the same store) moves krl-version forward.
  const store = new SqliteAuditLog(join(dev.dataDir, 'audit.db'), CheckpointSigner.openOrCreate(join(dev.dataDir, 'checkpoint-key.pem')));
  t.teardown(() => store.close());
  const seq = await store.recordRevocation({ requestId: 'r', at: new Date(), publicKeyFingerprint: `SHA256:${Buffer.alloc(32, 7).toString('base64').replace(/=+$/, '')}`, revokedBy: 'publicKey', reason: 'test', callerArn: 'arn:aws:iam::000000000000:user/admin', accountId: '000000000000', sourceIp: '127.0.0.1' });
  clock.offsetMs += Math.max(KRL_RECHECK_MS, 60_000);
  const later = await state(dev);
  t.equal(later.fields['krl-version'], String(seq), 'krl-version rose to the revocation');
  t.ok(Number(later.fields['issued-at']) > Number(first.fields['issued-at']), 'issued-at rose');
  t.equal(later.fields['krl-sha256'], sha256(Buffer.from(await (await fetch(`${dev.url}/v1/krl`)).arrayBuffer())), 'the new KRL, by hash');
  t.equal(later.fields['user-ca-sha256'], first.fields['user-ca-sha256'], 'the CA list did not change');
  t.ok(verifies(dir, caList, later.text, later.signature));
});
