// Preloaded into the production-like server (`node --import`): answers the
// host names in BENCH_RESOLVE (`name=address,…`) with the given loopback
// address, like an /etc/hosts entry for this one process; every other name
// resolves as usual. Node's net/tls connect (and so undici) look names up
// through dns.lookup, so this is all the server needs to reach a fixture
// under a real AWS host name — over TLS, checked as always.
import dns, { type LookupAddress } from 'node:dns';

const table = new Map(
  (process.env.BENCH_RESOLVE ?? '')
    .split(',')
    .filter((e) => e.includes('='))
    .map((e) => e.split('=', 2) as [string, string]),
);

if (table.size > 0) {
  const lookup = dns.lookup;
  const patched = (hostname: string, options: unknown, callback?: unknown): void => {
    const cb = (typeof options === 'function' ? options : callback) as (err: Error | null, address: string | LookupAddress[], family?: number) => void;
    const address = table.get(hostname);
    if (address === undefined) return void (lookup as (...args: unknown[]) => void).call(dns, hostname, options, callback);
    if (typeof options === 'object' && options !== null && (options as { all?: boolean }).all) return void process.nextTick(cb, null, [{ address, family: 4 }]);
    process.nextTick(cb, null, address, 4);
  };
  (dns as { lookup: unknown }).lookup = patched;
}
