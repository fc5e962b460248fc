// The server URL both sides agree on: canonical, and https unless the server
// is this machine — over plain http anyone on the path could answer for it
// (a host CA, a CA list, a KRL of theirs).
import t from 'tap';
import { canonicalServerUrl } from '../../protocol/server-url.js';

t.test('https anywhere, http only on loopback', async (t) => {
  t.equal(canonicalServerUrl('HTTPS://SSHCA.Example.com:443/'), 'https://sshca.example.com');
  for (const loopback of ['http://127.0.0.1:8080', 'http://127.1.2.3:8080', 'http://localhost:1', 'http://[::1]:9', 'http://[::ffff:7f00:1]:9']) t.equal(canonicalServerUrl(loopback), loopback);
  t.equal(canonicalServerUrl('http://[::ffff:127.0.0.1]:9'), 'http://[::ffff:7f00:1]:9', 'IPv4-mapped loopback, as URL spells it');
  for (const bad of ['http://192.0.2.2:18080', 'http://sshca.example.com', 'http://127.0.0.1.evil.example', 'http://localhost.evil.example', 'http://[::ffff:a00:1]:9', 'http://[::2]:9', 'ftp://sshca.example.com', 'https://u:p@sshca.example.com', 'https://sshca.example.com/?x']) {
    t.throws(() => canonicalServerUrl(bad), { code: 'SERVER_URL_INVALID' }, bad);
  }
});
