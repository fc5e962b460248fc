// Every policy example in docs/policy.md loads: a documented policy that
// the server refuses would teach operators the wrong thing.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parsePolicyFile } from '../../../server/policy/policy-file.js';

const doc = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'policy.md'), 'utf8');
const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);

t.test('docs/policy.md examples', async (t) => {
  t.ok(blocks.length >= 5, 'the examples were found');
  for (const [i, block] of blocks.entries()) {
    // A fragment (rules only) is checked inside a minimal policy.
    const text = block.startsWith('accounts:') ? block : `accounts: ['111122223333']\nrules:\n${block}`;
    t.doesNotThrow(() => parsePolicyFile(text, `docs/policy.md block ${i + 1}`), `block ${i + 1} loads`);
  }
  t.notOk(blocks.some((b) => b.includes('{{sourceIp}}/')), 'no example writes a prefix after {{sourceIp}}');
});
