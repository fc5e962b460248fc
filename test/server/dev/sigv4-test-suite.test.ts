// AWS's own SigV4 test suite against our canonical request, signature and
// request verifier, plus what the suite cannot show: repeated headers over a
// real HTTP connection to /dev/sts, and paths and queries signed by AWS's JS
// signer. The verifier must agree with AWS on what a client signed, or the
// dev STS and the STS/KMS fixtures accept what AWS would refuse (or not).
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import t from 'tap';
import { verifySigV4Request, type ReceivedRequest } from '../../../server/dev/sigv4-request-verifier.js';
import { canonicalQueryString, canonicalUri, parseSigV4Authorization, sigV4CanonicalRequest, sigV4Signature, type SigV4Input } from '../../../server/identity/sigv4.js';
import { startDevServer } from '../../fixtures/dev-server.js';
import { SIGV4_SUITE, SIGV4_TEST_VECTORS, type SigV4TestVector } from '../../fixtures/sigv4-test-vectors.js';

type HeaderPairs = ReadonlyArray<readonly [string, string]>;

const sha256Hex = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
const splitTarget = (target: string) => {
  const mark = target.indexOf('?');
  return mark < 0 ? { path: target, query: '' } : { path: target.slice(0, mark), query: target.slice(mark + 1) };
};

/** The vector's request as Node hands it over: `headers` merged with ', ', `rawHeaders` as sent. */
function received(v: SigV4TestVector, headers: HeaderPairs = v.headers): ReceivedRequest {
  const merged: Record<string, string> = {};
  for (const [name, value] of headers) {
    const key = name.toLowerCase();
    merged[key] = Object.hasOwn(merged, key) ? `${merged[key]}, ${value}` : value;
  }
  return { method: v.method, url: v.target, headers: merged, rawHeaders: headers.flat(), body: Buffer.from(v.body, 'utf8') };
}

/** What our canonicalisation gets for the vector: everything but Authorization, as received. */
function suiteInput(v: SigV4TestVector): SigV4Input {
  const authorization = v.headers.find(([name]) => name.toLowerCase() === 'authorization');
  if (!authorization) throw new Error(`${v.name}: no Authorization`);
  const headers = new Map<string, string[]>();
  for (const [name, value] of v.headers) {
    const key = name.toLowerCase();
    if (key !== 'authorization') headers.set(key, [...(headers.get(key) ?? []), value]);
  }
  return {
    method: v.method,
    ...splitTarget(v.target),
    headers,
    signedHeaders: parseSigV4Authorization(authorization[1]).signedHeaders,
    payloadHash: sha256Hex(v.body),
    amzDate: SIGV4_SUITE.amzDate,
    region: SIGV4_SUITE.region,
    service: SIGV4_SUITE.service,
  };
}

const suiteOptions = (v: SigV4TestVector) => ({
  now: SIGV4_SUITE.now,
  region: SIGV4_SUITE.region,
  service: SIGV4_SUITE.service,
  acceptQuery: true,
  lookup: (id: string) => (id === SIGV4_SUITE.accessKeyId ? { secretAccessKey: SIGV4_SUITE.secretAccessKey, ...(v.sessionToken ? { sessionToken: v.sessionToken } : {}) } : undefined),
});

/**
 * One byte changed where whitespace folding cannot hide it: the last digit
 * (so an x-amz-date stays a valid, fresh instant) or else the last letter.
 */
function changeOneByte(value: string): string {
  const digit = value.search(/\d(?!.*\d)/s);
  if (digit >= 0) return value.slice(0, digit) + String((Number(value[digit]) + 1) % 10) + value.slice(digit + 1);
  const letter = value.search(/[A-Za-z](?!.*[A-Za-z])/s);
  if (letter < 0) throw new Error(`nothing to change in ${value}`);
  const c = value[letter]!;
  const next = c === 'z' ? 'a' : c === 'Z' ? 'A' : String.fromCharCode(c.charCodeAt(0) + 1);
  return value.slice(0, letter) + next + value.slice(letter + 1);
}

// Headers the verifier checks on their own before the signature: a change
// there is refused for that reason first, with AWS's code for it.
const REFUSED_FIRST_AS: Readonly<Record<string, string>> = {
  'x-amz-content-sha256': 'XAmzContentSHA256Mismatch',
  'x-amz-security-token': 'InvalidClientTokenId',
};

for (const v of SIGV4_TEST_VECTORS) {
  t.test(`suite: ${v.name}`, async (t) => {
    const input = suiteInput(v);
    t.equal(sigV4CanonicalRequest(input), v.canonicalRequest, 'canonical request as published');
    t.equal(sigV4Signature(input, SIGV4_SUITE.secretAccessKey), v.signature, 'signature as published');

    const verdict = verifySigV4Request(received(v), suiteOptions(v));
    t.same(verdict, { ok: true, accessKeyId: SIGV4_SUITE.accessKeyId }, 'verifier accepts the published request');

    for (const name of input.signedHeaders) {
      const at = v.headers.findLastIndex(([n]) => n.toLowerCase() === name);
      const changed = v.headers.map(([n, value], i): [string, string] => [n, i === at ? changeOneByte(value) : value]);
      const refused = verifySigV4Request(received(v, changed), suiteOptions(v));
      t.match(refused, { ok: false, code: REFUSED_FIRST_AS[name] ?? 'SignatureDoesNotMatch' }, `one byte of ${name} changed: refused`);
    }
  });
}

t.test('the live endpoints still refuse query strings', async (t) => {
  const v = SIGV4_TEST_VECTORS.find((x) => x.name === 'post-vanilla-query');
  if (!v) throw new Error('vector missing');
  t.match(verifySigV4Request(received(v), { ...suiteOptions(v), acceptQuery: false }), { ok: false, code: 'InvalidParameterCombination' });
});

t.test('what the suite leaves implicit', async (t) => {
  // Received paths are encoded again, never decoded first (AWS outside S3).
  t.equal(canonicalUri('/a%20b/'), '/a%2520b/');
  t.equal(canonicalUri("/!'()*"), '/%21%27%28%29%2A');
  t.equal(canonicalUri('/a/b/..'), '/a');
  t.equal(canonicalUri('/a/b/../'), '/a/');
  // Queries are decoded once, re-encoded, and sorted by name then value.
  t.equal(canonicalQueryString('b=2&a=2&a=1&c'), 'a=1&a=2&b=2&c=');
  t.equal(canonicalQueryString('x=a+b&y=%7e%2a'), 'x=a%2Bb&y=~%2A');
  t.throws(() => canonicalQueryString('x=100%'), { code: 'SIGV4_MALFORMED' });
  t.throws(() => canonicalUri('http://example.com/'), { code: 'SIGV4_MALFORMED' });
});

t.test("AWS's JS signer and our verifier agree on paths and queries outside the suite", async (t) => {
  const credentials = { accessKeyId: 'AKIAEXAMPLEEXAMPLE01', secretAccessKey: 'c2VjcmV0LWZvci10aGUtdGVzdA' };
  const signer = new SignatureV4({ credentials, region: 'eu-west-1', service: 'kms', sha256: Hash.bind(null, 'sha256') });
  const now = new Date();
  const cases: Array<{ path: string; query: Record<string, string>; sent: string }> = [
    { path: '/a%20b/', query: {}, sent: '/a%20b/' },
    { path: "/x/!'()*/", query: {}, sent: "/x/!'()*/" },
    { path: '/a/./b/../c//d/', query: {}, sent: '/a/./b/../c//d/' },
    { path: '/', query: { 'b key': 'v+1', a: '\u1234', 'A~': '' }, sent: '/?b%20key=v%2B1&a=%E1%88%B4&A~=' },
  ];
  for (const c of cases) {
    const request = new HttpRequest({ method: 'POST', protocol: 'https:', hostname: 'kms.example', path: c.path, query: c.query, headers: { host: 'kms.example' }, body: '{}' });
    const signed = await signer.sign(request, { signingDate: now });
    const headers = Object.entries(signed.headers);
    const verdict = verifySigV4Request(
      { method: 'POST', url: c.sent, headers: Object.fromEntries(headers), rawHeaders: headers.flat(), body: Buffer.from('{}') },
      { now, region: 'eu-west-1', service: 'kms', acceptQuery: true, lookup: (id) => (id === credentials.accessKeyId ? credentials : undefined) },
    );
    t.same(verdict, { ok: true, accessKeyId: credentials.accessKeyId }, c.sent);
  }
});

t.test('a repeated header over HTTP to /dev/sts is signed joined with "," (as AWS does)', async (t) => {
  const dev = await startDevServer(t);
  const url = new URL(dev.endpoint);
  const body = 'Action=GetCallerIdentity&Version=2011-06-15';
  const signer = new SignatureV4({ credentials: dev.credentials, region: 'us-east-1', service: 'sts', sha256: Hash.bind(null, 'sha256') });

  /** Signs with `signedAs` as the header's value, then sends it as separate lines. */
  const send = async (signedAs: string, sentAs: string[]) => {
    const request = new HttpRequest({
      method: 'POST', protocol: url.protocol, hostname: url.hostname, port: Number(url.port), path: url.pathname, body,
      headers: { host: url.host, 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', 'x-test-repeated': signedAs },
    });
    const signed = await signer.sign(request);
    const raw = Object.entries(signed.headers).flatMap(([name, value]) => (name === 'x-test-repeated' ? sentAs.flatMap((v) => [name, v]) : [name, value]));
    raw.push('content-length', String(Buffer.byteLength(body)));
    return new Promise<{ status: number; json: Record<string, unknown> }>((resolve, reject) => {
      const req = httpRequest({ method: 'POST', hostname: url.hostname, port: url.port, path: url.pathname, headers: raw }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> }));
      });
      req.on('error', reject);
      req.end(body);
    });
  };

  const joined = await send('one,two,three', ['one', 'two', 'three']);
  t.equal(joined.status, 200, 'signed as one,two,three: accepted');
  t.match(joined.json, { GetCallerIdentityResponse: { GetCallerIdentityResult: { Arn: String } } });

  // Node's own view of the request joins them with ', '; AWS never signs that.
  const nodeJoined = await send('one, two, three', ['one', 'two', 'three']);
  t.equal(nodeJoined.status, 403, "signed as Node's one, two, three: refused");
  t.match(nodeJoined.json, { Error: { Code: 'SignatureDoesNotMatch' } });
});
