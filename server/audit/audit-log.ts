// The record of every certificate issued and every refusal (DESIGN.md §3,
// rule 13: no record, no certificate).

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
  readonly callerArn: string;
  readonly accountId: string;
  readonly sourceIp: string;
  readonly publicKeyFingerprint: string;
  readonly certificateFingerprint: string;
  readonly caFingerprint: string;
  readonly reason?: string;
}

/** One refused request: the specific code stays here, never in the 401 body. */
export interface RefusalRecord {
  readonly requestId: string;
  readonly at: Date;
  readonly code: string;
  readonly callerArn?: string;
  readonly sourceIp: string;
}

/** A stored record as read back. */
export type AuditRecord =
  | ({ readonly id: number; readonly kind: 'issued' } & IssuedRecord)
  | ({ readonly id: number; readonly kind: 'refused' } & RefusalRecord);

/** Durable audit storage. Every write resolves only once committed. */
export interface AuditLog {
  recordIssued(record: IssuedRecord): Promise<void>;
  recordRefusal(record: RefusalRecord): Promise<void>;
  /** The newest records first. */
  recent(limit: number): Promise<AuditRecord[]>;
  /** Resolves when the store can take writes (for /readyz). */
  ready(): Promise<void>;
  close(): Promise<void>;
}
