// GET /metrics (issue 13): Prometheus exposition on a listener of its own,
// never on the API's port, counting what operators alert on.
import { generateKeyPairSync } from 'node:crypto';
import t from 'tap';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { publicKeyFromKeyObject, toOpenSshLine } from '../../protocol/ssh-public-key.js';
import { signToken, startDevServer } from '../fixtures/dev-server.js';

interface Family {
  name: string;
  type: string;
  metrics: Array<{ labels?: Record<string, string>; value?: string; buckets?: Record<string, string>; count?: string }>;
}

/** The parsed families (the parser throws on text that is not the exposition format) and the raw text. */
const scrape = async (url: string): Promise<Family[] & { text: string }> => {
  const r = await fetch(url);
  if (r.status !== 200) throw new Error(`metrics answered ${r.status}`);
  t.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await r.text();
  return Object.assign(parsePrometheusTextFormat(text) as Family[], { text });
};
/** A histogram's observation count for one label set (the parser keeps only a histogram's buckets, so read `_count`). */
const observations = (scraped: { text: string }, name: string, labels: string): number => Number(new RegExp(`^${name}_count\\{${labels}\\} (\\d+)$`, 'm').exec(scraped.text)?.[1] ?? 0);
const value = (families: Family[], name: string, labels: Record<string, string> = {}): number => {
  const family = families.find((f) => f.name === name);
  const metric = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return Number(metric?.value ?? metric?.count ?? 0);
};

t.test('/metrics: its own loopback listener, Prometheus text, issuance and refusals by code', async (t) => {
  const dev = await startDevServer(t);
  const metricsUrl = dev.server.metricsUrl!;
  t.match(metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/, 'loopback, a port of its own');
  t.not(new URL(metricsUrl).port, new URL(dev.url).port);
  t.equal((await fetch(`${dev.url}/metrics`)).status, 404, 'never on the API port');
  t.equal((await fetch(metricsUrl.replace('/metrics', '/other'))).status, 404);

  const before = await scrape(metricsUrl);
  const publicKey = toOpenSshLine(publicKeyFromKeyObject(generateKeyPairSync('ed25519').publicKey));
  const body = JSON.stringify({ publicKey, nonce: 'metrics-test-1' });
  const issue = async (payload: string, extra: Record<string, string> = {}) =>
    fetch(`${dev.url}/v1/certs/user`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `SSHCA-AWS4 ${await signToken(dev, payload)}`, ...extra }, body: payload });
  t.equal((await issue(body)).status, 201);
  const root = JSON.stringify({ publicKey, principals: ['root'], nonce: 'metrics-test-2' });
  t.equal((await issue(root)).status, 403);
  const anonymous = await fetch(`${dev.url}/v1/certs/user`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'SSHCA-AWS4 garbage' }, body });
  t.equal(anonymous.status, 401);

  const after = await scrape(metricsUrl);
  t.equal(value(after, 'sshca_certificates_issued_total', { kind: 'user' }) - value(before, 'sshca_certificates_issued_total', { kind: 'user' }), 1, 'one issuance');
  t.equal(value(after, 'sshca_requests_refused_total', { kind: 'user', code: 'POLICY_PRINCIPAL_DENIED' }), 1, 'the policy refusal, by its code');
  t.equal(value(after, 'sshca_requests_refused_total', { kind: 'user', code: 'AUTHN_TOKEN_MALFORMED' }), 1, 'the 401, by its specific code (clients only see AUTHN_FAILED)');
  t.ok(observations(after, 'sshca_sts_request_duration_seconds', 'outcome="answered"') >= 2, 'STS calls timed');
  t.ok(observations(after, 'sshca_kms_sign_duration_seconds', 'ca="user",outcome="ok"') >= 1, 'CA signatures timed');
  t.ok(observations(after, 'sshca_audit_append_duration_seconds', 'outcome="ok"') >= 2, 'audit commits timed (issuance and the refusal)');
  t.equal(value(after, 'sshca_krl_version'), 0);
  t.ok(after.some((f) => f.name === 'sshca_process_cpu_seconds_total'), 'process metrics');
  for (const name of ['sshca_sts_request_duration_seconds', 'sshca_kms_sign_duration_seconds', 'sshca_audit_append_duration_seconds']) {
    t.equal(after.find((f) => f.name === name)?.type, 'HISTOGRAM', `${name} is a histogram`);
  }
  // A policy reload is counted by result.
  dev.server.reloadPolicy();
  t.equal(value(await scrape(metricsUrl), 'sshca_policy_reloads_total', { result: 'ok' }), 1);
});

t.test('5xx answers are failures, not refusals', async (t) => {
  const { Metrics } = await import('../../server/metrics.js');
  const metrics = new Metrics();
  metrics.answeredWithError('user', 'UNAVAILABLE_STS', 503);
  metrics.answeredWithError('user', 'POLICY_NO_RULE', 403);
  const text = await metrics.registry.metrics();
  t.match(text, /^sshca_requests_failed_total\{kind="user",code="UNAVAILABLE_STS"\} 1$/m);
  t.match(text, /^sshca_requests_refused_total\{kind="user",code="POLICY_NO_RULE"\} 1$/m);
  t.notMatch(text, /sshca_requests_refused_total\{[^}]*UNAVAILABLE_STS/);
});
