// The hosts sshca is for: ssh host patterns (`*.internal`, `10.*`) that
// scope both the ssh_config block and the host CA's `@cert-authority` line.
import { ClientError } from './client-error.js';

/**
 * One ssh pattern: optional `!`, then hostname/address characters and the
 * wildcards `*` `?`; `[host]:port` forms too. Nothing that could end a
 * pattern list or a line in ssh_config or known_hosts (space, comma, `#`, quotes).
 */
const PATTERN = /^!?[A-Za-z0-9.*?:_[\]-]{1,253}$/;

/**
 * A pattern with no label of its own matches (nearly) every host, github.com
 * included: `*`, `*.*`, `[*]:*`, `*.?*`. Each label (between dots, port and
 * brackets aside) is only wildcards.
 */
function matchesEverything(pattern: string): boolean {
  const host = pattern.replace(/^!/, '').replace(/^\[(.*)\](?::.*)?$/, '$1');
  return host.split('.').every((label) => /^[*?]*$/.test(label));
}

/** Why `pattern` is not a usable host pattern, or undefined when it is. */
export function hostPatternProblem(pattern: string, allHosts: boolean): string | undefined {
  if (pattern === '') return 'an empty host pattern (two commas in a row, or one at an end)';
  if (/\s/.test(pattern)) return `host pattern ${JSON.stringify(pattern)} contains whitespace (separate patterns with commas)`;
  if (pattern.includes('/')) return `host pattern ${JSON.stringify(pattern)}: ssh patterns take no CIDR ranges; write 10.* rather than 10.0.0.0/8`;
  if (!PATTERN.test(pattern)) return `host pattern ${JSON.stringify(pattern)} is not an ssh host pattern (letters, digits, . - _ : [ ] and the wildcards * ?)`;
  // Trusting the host CA (and logging in) for every host would hand any host CA
  // signature authority over github.com too: only when asked for in so many words.
  if (matchesEverything(pattern) && !allHosts) return `host pattern ${JSON.stringify(pattern)} matches every host; give --all-hosts if that is really meant`;
  return undefined;
}

/** Parses `--host 'a,b'`: comma separated, each one valid. */
export function parseHostPatterns(text: string, allHosts: boolean): string[] {
  const patterns = text.split(',');
  for (const p of patterns) {
    const problem = hostPatternProblem(p, allHosts);
    if (problem) throw new ClientError('CLIENT_USAGE', `--host: ${problem}`);
  }
  return patterns;
}

/**
 * The known_hosts pattern list for `patterns`: each as given, and its
 * `[pattern]:*` form, because ssh looks a host on a non-default port up as
 * `[host]:port`. A host certificate's principals name the host, not the
 * port, so trusting the CA on every port of a matching host is no wider.
 */
export function knownHostsPatterns(patterns: readonly string[]): string {
  const withPorts = patterns.flatMap((p) => {
    if (p.includes('[')) return [p];
    const negated = p.startsWith('!');
    const host = negated ? p.slice(1) : p;
    return [p, `${negated ? '!' : ''}[${host}]:*`];
  });
  return withPorts.join(',');
}
