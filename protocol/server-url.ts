// The canonical form of an sshca server's URL: what the client signs as the
// token's audience and what the server is configured with. A token is then
// good only at the server the user meant (a look-alike URL yields a token
// naming the look-alike, which the real server refuses).

/**
 * Whether plain http may name `hostname` (URL's spelling): this machine only —
 * `localhost`, 127.0.0.0/8, `[::1]` and IPv4-mapped 127.0.0.0/8 (`[::ffff:7f00:1]`).
 */
function isLoopback(hostname: string): boolean {
  if (hostname === 'localhost' || hostname === '[::1]') return true;
  if (/^127(?:\.\d{1,3}){3}$/.test(hostname)) return true;
  return /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(hostname);
}

/** Why a server URL cannot be an audience. */
export class ServerUrlError extends Error {
  readonly code = 'SERVER_URL_INVALID';
}

/**
 * `scheme://host[:port]`, lowercased, default port dropped (URL's own
 * normalisation, IDN hosts in punycode). Refuses anything but https (http
 * only for a loopback host), userinfo, a query or a fragment; a path other
 * than `/` is refused unless the caller allows it (`allowPath`: then it is
 * dropped, which only a caller that says so to the user should ask for).
 */
export function canonicalServerUrl(value: string, options: { allowPath?: boolean } = {}): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ServerUrlError(`${JSON.stringify(value)} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ServerUrlError(`${value}: only http(s) URLs`);
  if (url.username || url.password) throw new ServerUrlError(`${value}: no user name or password in the URL`);
  if (url.search || url.hash) throw new ServerUrlError(`${value}: no query or fragment`);
  if (!options.allowPath && url.pathname !== '/') throw new ServerUrlError(`${value}: no path`);
  // Plain http only to this machine: anyone on the path could otherwise
  // answer for the server (a host CA of theirs, a CA list, a KRL).
  if (url.protocol === 'http:' && !isLoopback(url.hostname)) throw new ServerUrlError(`${value}: https only (plain http only for a loopback address)`);
  return url.origin;
}
