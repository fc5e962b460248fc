// Our own OpenSSH KRL encoder (PROTOCOL.krl): what sshd's RevokedKeys reads.
import { SshWriter } from '../../protocol/ssh-wire.js';
import { CERT_KEY_ID, CERT_SERIAL_BITMAP, CERT_SERIAL_LIST, CERT_SERIAL_RANGE, KRL_FORMAT_VERSION, KRL_MAGIC, SECTION_CERTIFICATES, SECTION_FINGERPRINT_SHA256 } from '../../protocol/krl-format.js';

/** Everything a KRL revokes. */
export interface KrlContent {
  readonly version: bigint;
  /** Seconds since the epoch. */
  readonly generatedAt: number;
  readonly comment: string;
  /** Per CA key (wire blob; empty: any CA). */
  readonly certificates: ReadonlyArray<{ readonly caKey: Buffer; readonly serials: readonly bigint[]; readonly keyIds: readonly string[] }>;
  /** SHA-256 of plain public key blobs (revokes the key, and so every certificate for it). */
  readonly sha256Fingerprints: readonly Buffer[];
}

/** A run of consecutive serials this long or longer is cheaper as a range (16 bytes) than listed. */
const MIN_RANGE = 3;
/** Bitmaps span at most this many serials, so a stray far-away serial never makes one huge. */
const MAX_BITMAP_SPAN = 8192n;

/**
 * Splits sorted unique serials into ranges, bitmaps and a list, choosing
 * whichever is smallest for each cluster. Random 64-bit serials are sparse
 * (a list); ranges and bitmaps matter for dense serial spaces.
 */
function serialSections(serials: readonly bigint[]): Buffer[] {
  const sorted = [...new Set(serials)].filter((s) => s > 0n).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const sections: Buffer[] = [];
  const list: bigint[] = [];
  const section = (type: number, data: Buffer) => sections.push(new SshWriter().raw(Buffer.from([type])).string(data).toBuffer());
  let i = 0;
  while (i < sorted.length) {
    // A consecutive run?
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1n) j++;
    if (j - i + 1 >= MIN_RANGE) {
      section(CERT_SERIAL_RANGE, new SshWriter().uint64(sorted[i]!).uint64(sorted[j]!).toBuffer());
      i = j + 1;
      continue;
    }
    // A dense cluster for a bitmap? Extend while the span stays bounded.
    let k = i;
    while (k + 1 < sorted.length && sorted[k + 1]! - sorted[i]! < MAX_BITMAP_SPAN) k++;
    const count = k - i + 1;
    const bitmapBytes = Number((sorted[k]! - sorted[i]!) / 8n) + 1;
    if (count >= 2 && bitmapBytes + 16 < count * 8) {
      let bits = 0n;
      for (let n = i; n <= k; n++) bits |= 1n << (sorted[n]! - sorted[i]!);
      const hex = bits.toString(16);
      section(CERT_SERIAL_BITMAP, new SshWriter().uint64(sorted[i]!).mpint(Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex')).toBuffer());
      i = k + 1;
      continue;
    }
    list.push(sorted[i]!);
    i++;
  }
  if (list.length > 0) {
    const w = new SshWriter();
    for (const s of list) w.uint64(s);
    section(CERT_SERIAL_LIST, w.toBuffer());
  }
  return sections;
}

export function encodeKrl(content: KrlContent): Buffer {
  const w = new SshWriter()
    .uint64(KRL_MAGIC)
    .uint32(KRL_FORMAT_VERSION)
    .uint64(content.version)
    .uint64(BigInt(content.generatedAt))
    .uint64(0n) // flags
    .string('') // reserved
    .string(content.comment);
  for (const ca of content.certificates) {
    const subsections = serialSections(ca.serials);
    const keyIds = [...new Set(ca.keyIds)].sort();
    if (keyIds.length > 0) {
      const ids = new SshWriter();
      for (const id of keyIds) ids.string(id);
      subsections.push(new SshWriter().raw(Buffer.from([CERT_KEY_ID])).string(ids.toBuffer()).toBuffer());
    }
    if (subsections.length === 0) continue;
    const body = new SshWriter().string(ca.caKey).string('');
    for (const s of subsections) body.raw(s);
    w.raw(Buffer.from([SECTION_CERTIFICATES])).string(body.toBuffer());
  }
  if (content.sha256Fingerprints.length > 0) {
    // PROTOCOL.krl: hashes in numeric (big-endian) order.
    const hashes = [...content.sha256Fingerprints].sort(Buffer.compare);
    const body = new SshWriter();
    for (const h of hashes) body.string(h);
    w.raw(Buffer.from([SECTION_FINGERPRINT_SHA256])).string(body.toBuffer());
  }
  return w.toBuffer();
}
