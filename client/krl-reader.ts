// The client's reader of OpenSSH KRLs (PROTOCOL.krl), for one question: does
// the server's revocation list revoke this certificate? It reads exactly the
// parts sshca's server writes (server/revocation/krl-encoder.ts) and refuses
// everything else, so a KRL it does not fully understand can never read as
// "not revoked".
import { createHash } from 'node:crypto';
import { CodedError } from '../protocol/coded-error.js';
import { SshReader } from '../protocol/ssh-wire.js';
import { CERT_KEY_ID, CERT_SERIAL_BITMAP, CERT_SERIAL_LIST, CERT_SERIAL_RANGE, KRL_FORMAT_VERSION, KRL_MAGIC, SECTION_CERTIFICATES, SECTION_FINGERPRINT_SHA256 } from '../protocol/krl-format.js';

/** A KRL this reader cannot vouch for: malformed, or using a part sshca's server never writes. */
export class KrlReadError extends CodedError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CLIENT_KRL_UNREADABLE', message, options);
  }
}

/** What identifies a certificate to a KRL. */
export interface KrlSubject {
  readonly serial: bigint;
  readonly keyId: string;
  /** The signing CA's public key blob. */
  readonly caKey: Buffer;
  /** The certified key's plain public key blob (without the certificate). */
  readonly publicKey: Buffer;
}

/** Why a certificate is revoked: its own entry, its key, or its CA key. */
export type KrlMatch = 'certificate' | 'key' | 'ca-key';

/** Revocations for the certificates of one CA key (empty `caKey`: any CA). */
interface CertificateRevocations {
  readonly caKey: Buffer;
  readonly serials: Set<bigint>;
  readonly ranges: Array<readonly [bigint, bigint]>;
  readonly bitmaps: Array<{ readonly offset: bigint; readonly width: bigint; readonly bits: bigint }>;
  readonly keyIds: Set<string>;
}

/** A parsed KRL. */
export class RevocationList {
  constructor(
    readonly version: bigint,
    private readonly certificates: readonly CertificateRevocations[],
    private readonly sha256Keys: ReadonlySet<string>,
  ) {}

  /**
   * Whether the KRL revokes `cert`, in the order sshd checks
   * (krl.c ssh_krl_check_key): the key, the CA key, then the certificate.
   */
  revokes(cert: KrlSubject): KrlMatch | undefined {
    if (this.sha256Keys.has(sha256Hex(cert.publicKey))) return 'key';
    if (this.sha256Keys.has(sha256Hex(cert.caKey))) return 'ca-key';
    for (const section of this.certificates) {
      if (section.caKey.length > 0 && !section.caKey.equals(cert.caKey)) continue;
      if (section.keyIds.has(cert.keyId)) return 'certificate';
      // sshd ignores serial 0 (a CA that did not set one); sshca never issues it.
      if (cert.serial === 0n) continue;
      if (section.serials.has(cert.serial)) return 'certificate';
      if (section.ranges.some(([lo, hi]) => cert.serial >= lo && cert.serial <= hi)) return 'certificate';
      if (section.bitmaps.some((b) => cert.serial >= b.offset && cert.serial - b.offset < b.width && ((b.bits >> (cert.serial - b.offset)) & 1n) === 1n)) return 'certificate';
    }
    return undefined;
  }
}

function sha256Hex(blob: Buffer): string {
  return createHash('sha256').update(blob).digest('hex');
}

/** Splits `byte type, string data` records from `start` to the end of `buf`. */
function typedSections(buf: Buffer, start: number): Array<{ readonly type: number; readonly data: Buffer }> {
  const out: Array<{ type: number; data: Buffer }> = [];
  let at = start;
  while (at < buf.length) {
    const r = new SshReader(buf.subarray(at + 1));
    out.push({ type: buf[at]!, data: r.string() });
    at += 1 + r.position;
  }
  return out;
}

/** Reads one certificate section: the CA key, then its subsections. */
function readCertificateSection(data: Buffer): CertificateRevocations {
  const r = new SshReader(data);
  const caKey = Buffer.from(r.string());
  r.string(); // reserved
  const section: CertificateRevocations = { caKey, serials: new Set(), ranges: [], bitmaps: [], keyIds: new Set() };
  for (const { type, data: sub } of typedSections(data, r.position)) {
    const body = new SshReader(sub);
    switch (type) {
      case CERT_SERIAL_LIST:
        while (body.remaining > 0) section.serials.add(body.uint64());
        break;
      case CERT_SERIAL_RANGE: {
        const lo = body.uint64();
        const hi = body.uint64();
        if (lo > hi) throw new KrlReadError('a serial range ends before it starts');
        section.ranges.push([lo, hi]);
        break;
      }
      case CERT_SERIAL_BITMAP: {
        const offset = body.uint64();
        const magnitude = body.mpint();
        section.bitmaps.push({ offset, width: BigInt(magnitude.length * 8), bits: magnitude.length ? BigInt(`0x${magnitude.toString('hex')}`) : 0n });
        break;
      }
      case CERT_KEY_ID:
        while (body.remaining > 0) section.keyIds.add(body.text());
        break;
      default:
        throw new KrlReadError(`unsupported certificate subsection 0x${type.toString(16)}`);
    }
    body.end();
  }
  return section;
}

/**
 * Parses a KRL. Throws KrlReadError for anything malformed and for every
 * section sshca's server does not write (explicit keys, SHA1 hashes,
 * signatures, unknown types): the caller then knows nothing, rather than
 * wrongly knowing "not revoked".
 */
export function readKrl(bytes: Buffer): RevocationList {
  try {
    const r = new SshReader(bytes);
    if (r.uint64() !== KRL_MAGIC) throw new KrlReadError('not an OpenSSH KRL');
    const format = r.uint32();
    if (format !== KRL_FORMAT_VERSION) throw new KrlReadError(`KRL format version ${format} is not supported`);
    const version = r.uint64();
    r.uint64(); // generated date
    r.uint64(); // flags
    r.string(); // reserved
    r.string(); // comment
    const certificates: CertificateRevocations[] = [];
    const sha256Keys = new Set<string>();
    for (const { type, data } of typedSections(bytes, r.position)) {
      if (type === SECTION_CERTIFICATES) certificates.push(readCertificateSection(data));
      else if (type === SECTION_FINGERPRINT_SHA256) {
        const body = new SshReader(data);
        while (body.remaining > 0) {
          const hash = body.string();
          if (hash.length !== 32) throw new KrlReadError('a SHA256 key hash is not 32 bytes');
          sha256Keys.add(hash.toString('hex'));
        }
      } else throw new KrlReadError(`unsupported KRL section ${type}`);
    }
    return new RevocationList(version, certificates, sha256Keys);
  } catch (err) {
    if (err instanceof KrlReadError) throw err;
    throw new KrlReadError(`malformed KRL: ${(err as Error).message}`, { cause: err });
  }
}
