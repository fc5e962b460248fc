// Audit checkpoints signed by a key in KMS (issue 13): through the real SDK
// client against the KMS fixture (which verifies SigV4 and signs for real),
// appended concurrently, and accepted by `sshca audit verify` offline.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { ExportLine } from '../../../protocol/audit-chain.js';
import { KmsCheckpointSigner } from '../../../server/audit/kms-checkpoint-signer.js';
import { SqliteAuditLog } from '../../../server/audit/sqlite-audit-log.js';
import { runCli } from '../../fixtures/cli.js';
import { startKmsFixture } from '../../fixtures/kms-fixture.js';

t.test('a KMS checkpoint key (Ed25519, P-256): every record signed, sshca audit verify accepts the export', async (t) => {
  const kms = await startKmsFixture(t);
  for (const [spec, alg] of [['ECC_NIST_EDWARDS25519', 'EdDSA'], ['ECC_NIST_P256', 'ES256']] as const) {
    const arn = kms.createKey(spec);
    const signer = await KmsCheckpointSigner.open({ kms: kms.client(), keyRef: arn });
    t.equal(signer.jwk.alg, alg, `${spec}: ${alg}`);
    const dir = t.testdir();
    const store = new SqliteAuditLog(join(dir, 'audit.db'), signer);
    t.teardown(() => store.close());
    const signsBefore = kms.counts.sign;
    // Concurrent appends: committed as batches, one kms:Sign per batch (issue 14), and the chain stays whole.
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        store.recordRefusal({ requestId: `r${i}`, at: new Date(), code: 'POLICY_NO_RULE', callerArn: 'arn:aws:iam::111111111111:user/eve', accountId: '111111111111', sourceIp: '10.0.0.1' }),
      ),
    );
    const signs = kms.counts.sign - signsBefore;
    t.ok(signs >= 1 && signs < 12, `12 concurrent appends cost ${signs} kms:Sign calls, one per batch`);
    const records = [];
    for await (const r of store.exportRecords()) records.push(r);
    t.same(records.map((r) => r.seq), Array.from({ length: 12 }, (_, i) => i + 1));
    t.ok(records.some((r) => r.checkpoint === undefined), "batched: only a batch's last record carries a checkpoint, and the export still verifies offline");
    const last = records.at(-1)!;
    const at = new Date().toISOString();
    const lines: ExportLine[] = [...records.map((r) => ({ type: 'record' as const, ...r })), { type: 'head', seq: last.seq, hash: last.hash, at, checkpoint: await signer.signHead(last.seq, last.hash, at) }];
    const file = join(dir, 'export.ndjson');
    const keyFile = join(dir, 'checkpoint-key.json');
    writeFileSync(file, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
    writeFileSync(keyFile, JSON.stringify(signer.jwk));
    const verified = await runCli(['audit', 'verify', '--file', file, '--checkpoint-key', keyFile, '--json'], { HOME: dir });
    t.equal(verified.code, 0, verified.stderr);
    t.equal(JSON.parse(verified.stdout).count, 12);
    // A checkpoint from another KMS key does not pass as this one's.
    const other = await KmsCheckpointSigner.open({ kms: kms.client(), keyRef: kms.createKey(spec) });
    const forged = lines.map((l) => (l.type === 'record' && l.seq === 5 ? { ...l, checkpoint: '' } : l));
    forged[4] = { ...(lines[4] as Extract<ExportLine, { type: 'record' }>), checkpoint: await other.sign(5, (lines[4] as { hash: string }).hash) };
    writeFileSync(file, `${forged.map((l) => JSON.stringify(l)).join('\n')}\n`);
    const refused = await runCli(['audit', 'verify', '--file', file, '--checkpoint-key', keyFile, '--json'], { HOME: dir });
    t.not(refused.code, 0, 'a checkpoint by another key is refused');
    t.equal(JSON.parse(refused.stdout).failure.reason, 'checkpoint');
  }
  // Keys a JWS cannot name are refused at start-up with their own code.
  await t.rejects(KmsCheckpointSigner.open({ kms: kms.client(), keyRef: kms.createKey('RSA_3072') }), { code: 'UNAVAILABLE_KMS_KEY_SPEC' });
});
