// GET /metrics on a listener of its own (issue 13): never on the API's port,
// so a load balancer in front of the API can never expose it; loopback by
// default.
import { createServer, type Server } from 'node:http';
import type { Metrics } from './metrics.js';

/** A listening metrics endpoint. */
export interface MetricsListener {
  readonly url: string;
  close(): Promise<void>;
}

/** Serves `metrics` at `http://host:port/metrics` (port 0: any free port). */
export async function listenMetrics(metrics: Metrics, host: string, port: number): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Later errors (a failed socket) must never become an uncaught exception of the whole server.
  server.on('error', (err) => process.stderr.write(`sshca-server: metrics listener: ${err.message}\n`));
  const address = server.address() as { port: number };
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
