// The record of every certificate issued and every refusal (DESIGN.md §3,
// rule 13: no record, no certificate), chained and signed so that editing it
// afterwards shows.
import type { HourlyCounts } from '../../protocol/audit-api.js';
import type { ChainedRecord } from '../../protocol/audit-chain.js';

export type { HourlyCounts };

/** One issued certificate, as recorded before the response is sent. */
export interface IssuedRecord {
  readonly requestId: string;
  readonly at: Date;
  readonly serial: bigint;
  readonly keyId: string;
  readonly certificateType: 'user' | 'host';
  readonly principals: readonly string[];
  readonly validAfter: number;
  readonly validBefore: number;
  readonly extensions: readonly string[];
  readonly criticalOptions: Readonly<Record<string, string>>;
  readonly callerArn: string;
  readonly accountId: string;
  readonly userId: string;
  readonly sourceIp: string;
  readonly userAgent?: string;
  readonly publicKeyFingerprint: string;
  readonly certificateFingerprint: string;
  readonly caFingerprint: string;
  readonly reason?: string;
  readonly policyRule?: string;
}

/** One refused request: the specific code stays here, never in the 401 body. */
export interface RefusalRecord {
  readonly requestId: string;
  readonly at: Date;
  readonly code: string;
  readonly callerArn?: string;
  readonly accountId?: string;
  readonly sourceIp: string;
  readonly userAgent?: string;
}

/** A revocation: what it names, resolved to the certificate (or key) it revokes. */
export interface RevocationRecord {
  readonly requestId: string;
  readonly at: Date;
  readonly serial?: string;
  readonly keyId?: string;
  readonly publicKeyFingerprint?: string;
  readonly caFingerprint?: string;
  /** When the revoked certificate expires anyway; absent for keys (revoked for good). */
  readonly validBefore?: number;
  /** Which of the above the admin named: the KRL revokes by that. */
  readonly revokedBy: 'serial' | 'keyId' | 'publicKey';
  readonly reason: string;
  readonly callerArn: string;
  readonly accountId: string;
  readonly sourceIp: string;
  readonly userAgent?: string;
}

/** An admin takes a revocation back: the KRL drops it, the record of both stays. */
export interface WithdrawalRecord {
  readonly requestId: string;
  readonly at: Date;
  /** The sequence number of the `revoked` record withdrawn. */
  readonly revocationSeq: number;
  readonly reason: string;
  readonly callerArn: string;
  readonly accountId: string;
  readonly sourceIp: string;
  readonly userAgent?: string;
}

/**
 * Refusals of requests that never authenticated, counted over an interval
 * (rule 16): one record however many arrived, so anonymous traffic cannot
 * grow the chain faster than one record per interval.
 */
export interface RefusalSummaryRecord {
  readonly at: Date;
  readonly intervalStart: Date;
  readonly total: number;
  /** Sorted by code, then network; `network` is a /24 or /64, or `other` past the cap. */
  readonly counts: ReadonlyArray<{ readonly code: string; readonly network: string; readonly count: number }>;
}

/** Every kind of record on the chain. */
export const RECORD_KINDS = ['issued', 'refused', 'refused-summary', 'revoked', 'withdrawn'] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

/** Query filters (all optional, combined with AND). */
export interface AuditFilter {
  readonly kind?: RecordKind;
  readonly keyId?: string;
  readonly principal?: string;
  /** Caller ARNs, matched exactly (any of them); resolve short names first (callersNamed). */
  readonly callers?: readonly string[];
  readonly account?: string;
  readonly serial?: string;
  /** A public-key or certificate SHA256 fingerprint. */
  readonly fingerprint?: string;
  readonly since?: Date;
  readonly until?: Date;
}

/** Newest first; `before` is the cursor (a sequence number) from the previous page. */
export interface AuditPage {
  readonly before?: number;
  readonly limit: number;
}

/** Which certificates to list as active (issue 16). */
export interface ActiveFilter {
  readonly principal?: string;
  readonly callers?: readonly string[];
}

/** The newest record's position: what an anchor publishes. */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

/** Receives every committed batch's records, oldest first (the structured log stream). */
export type CommitListener = (records: readonly ChainedRecord[]) => void;

/** Durable, chained audit storage. Every write resolves only once committed. */
export interface AuditLog {
  recordIssued(record: IssuedRecord): Promise<void>;
  recordRefusal(record: RefusalRecord): Promise<void>;
  /** Resolves to the revocation's sequence number: the id a withdrawal names. */
  recordRevocation(record: RevocationRecord): Promise<number>;
  recordWithdrawal(record: WithdrawalRecord): Promise<number>;
  recordRefusalSummary(record: RefusalSummaryRecord): Promise<void>;
  /**
   * Every `revoked` and `withdrawn` record, oldest first, read through an
   * index of their own: the cost follows the number of revocations, never
   * the size of the record.
   */
  revocationRecords(): Promise<ChainedRecord[]>;
  /** Sequence number of the newest `revoked`/`withdrawn` record (0: none); one index lookup. */
  newestRevocationSeq(): Promise<number>;
  query(filter: AuditFilter, page: AuditPage): Promise<{ records: ChainedRecord[]; nextBefore?: number }>;
  /**
   * Issued records whose certificate is valid at `nowSeconds` (validAfter ≤
   * now < validBefore), newest first, at most `limit`. Revocations are not
   * applied here: the caller applies them (active-certificates.ts).
   */
  activeIssued(nowSeconds: number, filter: ActiveFilter, limit: number): Promise<ChainedRecord[]>;
  /**
   * Distinct caller ARNs whose last path segment is exactly `name` (an IAM
   * user name, a role session name, an SSO user name): at most `limit`.
   */
  callersNamed(name: string, limit: number): Promise<string[]>;
  /** Issued, refused and revoked per hour in [since, until). */
  hourlyCounts(since: Date, until: Date): Promise<HourlyCounts[]>;
  /** The newest record's seq and hash (undefined: an empty chain). */
  head(): Promise<ChainHead | undefined>;
  /** The hash of record `seq` (undefined: no such record). */
  hashAt(seq: number): Promise<string | undefined>;
  /** The sequence number of the first record at or after `since` (undefined: none). */
  firstSeqSince(since: Date): Promise<number | undefined>;
  /** The latest validBefore of any certificate signed by that CA key (undefined: none). */
  latestExpiry(caFingerprint: string): Promise<number | undefined>;
  /** Every record from `fromSeq` (default 1), oldest first, for export and verification. */
  exportRecords(fromSeq?: number): AsyncIterable<ChainedRecord>;
  /** Resolves when the store can take writes (for /readyz). */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/** The hashed fields of an issued record. */
export function issuedData(r: IssuedRecord): Record<string, unknown> {
  return {
    serial: r.serial.toString(), keyId: r.keyId, certificateType: r.certificateType, principals: [...r.principals],
    validAfter: r.validAfter, validBefore: r.validBefore, extensions: [...r.extensions], criticalOptions: { ...r.criticalOptions },
    callerArn: r.callerArn, accountId: r.accountId, userId: r.userId, sourceIp: r.sourceIp, userAgent: r.userAgent, requestId: r.requestId,
    publicKeyFingerprint: r.publicKeyFingerprint, certificateFingerprint: r.certificateFingerprint, caFingerprint: r.caFingerprint,
    reason: r.reason, policyRule: r.policyRule,
  };
}

/** The hashed fields of a refusal. */
export function refusalData(r: RefusalRecord): Record<string, unknown> {
  return { code: r.code, callerArn: r.callerArn, accountId: r.accountId, sourceIp: r.sourceIp, userAgent: r.userAgent, requestId: r.requestId };
}

/** The hashed fields of a revocation. */
export function revocationData(r: RevocationRecord): Record<string, unknown> {
  // `at` is the record's own field, not part of its data.
  const fields: Record<string, unknown> = { ...r };
  delete fields.at;
  return fields;
}

/** The hashed fields of a withdrawal. */
export function withdrawalData(r: WithdrawalRecord): Record<string, unknown> {
  return { revocationSeq: r.revocationSeq, reason: r.reason, callerArn: r.callerArn, accountId: r.accountId, sourceIp: r.sourceIp, userAgent: r.userAgent, requestId: r.requestId };
}

/** The hashed fields of a refusal summary. */
export function refusalSummaryData(r: RefusalSummaryRecord): Record<string, unknown> {
  return { intervalStart: r.intervalStart.toISOString(), total: r.total, counts: r.counts.map((c) => ({ ...c })) };
}

/** Drops undefined fields so the stored JSON is exactly what was hashed. */
export function definedOnly(data: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(data).filter(([, v]) => v !== undefined));
}
