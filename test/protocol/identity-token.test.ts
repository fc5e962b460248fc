import t from 'tap';
import { decodeIdentityToken, encodeIdentityToken, requestBinding, sha256Hex } from '../../protocol/identity-token.js';
import { parseJsonStrict } from '../../protocol/strict-json.js';

const good = { v: 1 as const, endpoint: 'https://sts.eu-west-1.amazonaws.com/', amzDate: '20261122T101500Z', authorization: 'AWS4-HMAC-SHA256 x' };
const header = (json: string) => `SSHCA-AWS4 ${Buffer.from(json).toString('base64url')}`;

t.test('round trip', async (t) => {
  t.same(decodeIdentityToken(`SSHCA-AWS4 ${encodeIdentityToken(good)}`), good);
  const withToken = { ...good, securityToken: 'IQo…' };
  t.same(decodeIdentityToken(`SSHCA-AWS4 ${encodeIdentityToken(withToken)}`), withToken);
});

t.test('refuses every malformed shape', async (t) => {
  const bad: Record<string, string> = {
    'wrong scheme': `Bearer ${encodeIdentityToken(good)}`,
    'padding / non-base64url': `SSHCA-AWS4 ${Buffer.from(JSON.stringify(good)).toString('base64')}==`,
    'duplicate key (JSON.parse would keep the last)': header('{"v":1,"endpoint":"https://sts.amazonaws.com/","endpoint":"https://evil/","amzDate":"x","authorization":"y"}'),
    'unknown field': header(JSON.stringify({ ...good, host: 'evil' })),
    'wrong version': header(JSON.stringify({ ...good, v: 2 })),
    'number as string': header(JSON.stringify({ ...good, v: '1' })),
    'missing authorization': header(JSON.stringify({ v: 1, endpoint: good.endpoint, amzDate: good.amzDate })),
    'nested value': header('{"v":1,"endpoint":{"a":1},"amzDate":"x","authorization":"y"}'),
    'trailing data': header(`${JSON.stringify(good)}x`),
    'empty security token': header(JSON.stringify({ ...good, securityToken: '' })),
    'too long': `SSHCA-AWS4 ${'A'.repeat(20000)}`,
  };
  for (const [name, value] of Object.entries(bad)) t.throws(() => decodeIdentityToken(value), { code: 'TOKEN_MALFORMED' }, name);
});

t.test('strict JSON: duplicate keys refused at any depth, escapes and look-alikes handled', async (t) => {
  const ok = '{ "a" : "x\\"y\\u0041", "b": [{"a": 1}, {"a": 2}], "c": {"a": {"a": 1}} }';
  t.same(parseJsonStrict(ok), JSON.parse(ok), 'same keys in different objects are fine');
  const dups: Record<string, string> = {
    'top level': '{"a":1,"a":2}',
    nested: '{"x":{"Arn":"real","Account":"1","Arn":"fake"}}',
    'in an array element': '[{"a":1,"a":1}]',
    'escaped spelling of the same key': '{"Arn":"real","\\u0041rn":"fake"}',
    'after a string containing braces and commas': '{"m":"},{\\"a\\":","a":1,"a":2}',
  };
  for (const [name, text] of Object.entries(dups)) t.throws(() => parseJsonStrict(text), { code: 'JSON_INVALID' }, name);
  t.throws(() => parseJsonStrict('{"a":'), { code: 'JSON_INVALID' }, 'invalid JSON');
});

t.test('request binding covers method, path and body', async (t) => {
  const base = requestBinding('POST', '/v1/certs/user', '{"a":1}');
  t.equal(base, sha256Hex(`POST\n/v1/certs/user\n${sha256Hex('{"a":1}')}`));
  t.not(requestBinding('POST', '/v1/certs/user', '{"a":2}'), base);
  t.not(requestBinding('POST', '/v1/certs/host', '{"a":1}'), base);
  t.not(requestBinding('PUT', '/v1/certs/user', '{"a":1}'), base);
});
