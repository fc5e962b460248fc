// The canonical form of an sshca server's URL: what the client signs as the
// token's audience and what the server is configured with. A token is then
// good only at the server the user meant (a look-alike URL yields a token
// naming the look-alike, which the real server refuses).

/** Why a server URL cannot be an audience. */
export class ServerUrlError extends Error {
  readonly code = 'SERVER_URL_INVALID';
}

/**
 * `scheme://host[:port]`, lowercased, default port dropped (URL's own
 * normalisation, IDN hosts in punycode). Refuses anything but http(s),
 * userinfo, a query or a fragment; a path other than `/` is dropped by the
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
  return url.origin;
}
