// Links one batch of appends onto the chain's head (issue 14), the same way
// for both stores: every record hashed onto the one before it, a serial that
// is already taken refused for its own record only (rule 8), and the batch's
// last record the one its checkpoint signs.
import { GENESIS_HASH, recordHash } from '../../protocol/audit-hash.js';

/** One append as the store receives it: `data` already stripped of undefined fields. */
export interface AppendInput {
  readonly kind: string;
  /** ISO 8601, as stored and hashed. */
  readonly at: string;
  readonly data: Readonly<Record<string, unknown>>;
}

/** A record linked into the chain, not yet signed or stored. */
export interface LinkedRecord extends AppendInput {
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
}

/** The serial of an issued record appears on the chain already (rule 8: serials are unique). */
export class DuplicateSerialError extends Error {
  readonly code = 'STORE_DUPLICATE_SERIAL';
}

/** The serials an `issued` append claims (to look them up under the chain's lock). */
export function issuedSerials(appends: readonly AppendInput[]): string[] {
  return appends.flatMap((a) => (a.kind === 'issued' && typeof a.data.serial === 'string' ? [a.data.serial] : []));
}

/**
 * Each append linked after `head` (undefined: an empty chain), in order, or
 * the error refusing it. A refused append takes no sequence number: the next
 * one links to the record before it.
 */
export function linkBatch(head: { readonly seq: number; readonly hash: string } | undefined, appends: readonly AppendInput[], takenSerials: ReadonlySet<string>): Array<LinkedRecord | DuplicateSerialError> {
  let seq = head?.seq ?? 0;
  let prevHash = head?.hash ?? GENESIS_HASH;
  const taken = new Set(takenSerials);
  return appends.map((a) => {
    const serial = a.kind === 'issued' ? a.data.serial : undefined;
    if (typeof serial === 'string') {
      if (taken.has(serial)) return new DuplicateSerialError(`serial ${serial} is already on the audit record`);
      taken.add(serial);
    }
    seq++;
    const hash = recordHash(prevHash, seq, a.at, a.kind, a.data);
    const linked = { ...a, seq, prevHash, hash };
    prevHash = hash;
    return linked;
  });
}

/** The batch's last linked record: the one its checkpoint signs. */
export function lastLinked(linked: ReadonlyArray<LinkedRecord | Error>): LinkedRecord | undefined {
  for (let i = linked.length - 1; i >= 0; i--) {
    const r = linked[i]!;
    if (!(r instanceof Error)) return r;
  }
  return undefined;
}
