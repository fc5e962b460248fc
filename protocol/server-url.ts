// The canonical form of an sshca server's URL: what the client signs as the
// token's audience and what the server is configured with. A token is then
// good only at the server the user meant (a look-alike URL yields a token
// naming the look-alike, which the real server refuses).

/** The hosts plain http may name (URL's own spelling of them). */
const LOOPBACK_HOSTS: readonly string[] = ['127.0.0.1', 'localhost', '[::1]'];

/** Why a server URL cannot be an audience. */
export class ServerUrlError extends Error {
  readonly code = 'SERVER_URL_INVALID';
}

/**
 * `scheme://host[:port]`, lowercased, default port dropped (URL's own
 * normalisation, IDN hosts in punycode). Refuses anything but https (http
 * only for a loopback host), userinfo, a query or a fragment; a path other than `/` is dropped by the
 * caller's choice (`allowPath`), never silently here.
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
  if (url.protocol === 'http:' && !LOOPBACK_HOSTS.includes(url.hostname)) throw new ServerUrlError(`${value}: https only (http only for 127.0.0.1, localhost or [::1])`);
  return url.origin;
}
