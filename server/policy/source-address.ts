// The `source-address` critical option: comma-separated CIDRs, where the
// entry `{{sourceIp}}` stands for exactly the caller's own address — /32 for
// IPv4, /128 for IPv6 (rule 21). The policy never widens it to a network.
import { isIP } from 'node:net';

/** The one placeholder source-address knows; always a whole entry of its own. */
export const SOURCE_IP = '{{sourceIp}}';

/** A literal CIDR: an address (no IPv6 zone) and a prefix length valid for its family. */
function isCidr(entry: string): boolean {
  const m = /^([^/\s%]+)\/(\d{1,3})$/.exec(entry);
  if (!m) return false;
  const family = isIP(m[1]!);
  return family !== 0 && Number(m[2]) <= (family === 4 ? 32 : 128);
}

/** Why `value` is not a valid source-address template, or undefined when it is. */
export function sourceAddressProblem(value: string): string | undefined {
  for (const entry of value.split(',').map((e) => e.trim())) {
    if (entry === SOURCE_IP) continue;
    // `{{sourceIp}}/24` would hand the certificate to the caller's whole
    // network (and `/32` is wrong for an IPv6 caller): the template already
    // renders the exact prefix for the caller's address family.
    if (entry.startsWith(`${SOURCE_IP}/`)) return `write ${SOURCE_IP} alone, without a prefix: it renders the caller's exact address (/32 for IPv4, /128 for IPv6)`;
    if (entry.includes('{{')) return `the only placeholder is ${SOURCE_IP}, written alone as one entry`;
    if (!isCidr(entry)) return `${JSON.stringify(entry.slice(0, 60))} is not a CIDR like 10.0.0.0/8 or 2001:db8::/32 (or ${SOURCE_IP})`;
  }
  return undefined;
}

/**
 * The caller's address as a single-address CIDR, or undefined when it is not
 * an IP address sshd could compare against. IPv4-mapped IPv6 addresses (what a
 * dual-stack socket reports for an IPv4 caller, in any spelling) become IPv4:
 * sshd compares IPv4 callers as IPv4, so `::ffff:a.b.c.d/128` would never match.
 */
export function callerCidr(ip: string): string | undefined {
  const family = isIP(ip);
  if (family === 4) return `${ip}/32`;
  // A zone (`fe80::1%eth0`) names an interface of this server, meaningless to sshd elsewhere.
  if (family !== 6 || ip.includes('%')) return undefined;
  let canonical: string;
  try {
    // The URL parser writes IPv6 canonically (RFC 5952: lower case, zeros
    // compressed), so every spelling of a mapped address reads ::ffff:hhhh:hhhh.
    canonical = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (mapped) {
    const hi = parseInt(mapped[1]!, 16);
    const lo = parseInt(mapped[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}/32`;
  }
  return `${canonical}/128`;
}

/**
 * Fills `{{sourceIp}}` entries with the caller's CIDR; undefined when the
 * caller's address cannot be used or the result is not a list of CIDRs
 * (rule 11: checked again after filling in, whatever built the rule).
 */
export function renderSourceAddress(value: string, sourceIp: string): string | undefined {
  const entries = value.split(',').map((e) => e.trim());
  const cidr = entries.includes(SOURCE_IP) ? callerCidr(sourceIp) : undefined;
  if (entries.includes(SOURCE_IP) && cidr === undefined) return undefined;
  const rendered = entries.map((e) => (e === SOURCE_IP ? cidr! : e));
  return rendered.every(isCidr) ? rendered.join(',') : undefined;
}
