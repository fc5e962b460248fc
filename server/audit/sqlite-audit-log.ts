// The embedded default's store: one SQLite file holding the audit record and
// the replay cache. WAL with synchronous=FULL, so a write has reached the
// disk before the certificate is returned.
import Database from 'better-sqlite3';
import type { ReplayCache } from '../identity/replay-cache.js';
import type { AuditLog, AuditRecord, IssuedRecord, RefusalRecord } from './audit-log.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS audit_records (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL CHECK (kind IN ('issued', 'refused')),
  at TEXT NOT NULL,
  request_id TEXT NOT NULL,
  source_ip TEXT NOT NULL,
  caller_arn TEXT,
  account_id TEXT,
  code TEXT,
  serial TEXT,
  key_id TEXT,
  certificate_type TEXT,
  principals TEXT,
  valid_after INTEGER,
  valid_before INTEGER,
  public_key_fingerprint TEXT,
  certificate_fingerprint TEXT,
  ca_fingerprint TEXT,
  reason TEXT
);
-- Rule 8: serials are unique across everything this CA ever issued.
CREATE UNIQUE INDEX IF NOT EXISTS audit_records_serial ON audit_records (serial) WHERE serial IS NOT NULL;
CREATE TABLE IF NOT EXISTS used_token_signatures (
  signature TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
);
`;

/** AuditLog and ReplayCache on one SQLite database. */
export class SqliteAuditLog implements AuditLog, ReplayCache {
  private readonly db: Database.Database;

  constructor(path: string, options: { busyTimeoutMs?: number } = {}) {
    this.db = new Database(path, { timeout: options.busyTimeoutMs ?? 5000 });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec(SCHEMA);
  }

  async recordIssued(r: IssuedRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO audit_records (kind, at, request_id, source_ip, caller_arn, account_id, serial, key_id, certificate_type,
           principals, valid_after, valid_before, public_key_fingerprint, certificate_fingerprint, ca_fingerprint, reason)
         VALUES ('issued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        r.at.toISOString(), r.requestId, r.sourceIp, r.callerArn, r.accountId, r.serial.toString(), r.keyId, r.certificateType,
        JSON.stringify(r.principals), r.validAfter, r.validBefore, r.publicKeyFingerprint, r.certificateFingerprint, r.caFingerprint, r.reason ?? null,
      );
  }

  async recordRefusal(r: RefusalRecord): Promise<void> {
    this.db
      .prepare(`INSERT INTO audit_records (kind, at, request_id, source_ip, caller_arn, code) VALUES ('refused', ?, ?, ?, ?, ?)`)
      .run(r.at.toISOString(), r.requestId, r.sourceIp, r.callerArn ?? null, r.code);
  }

  async recent(limit: number): Promise<AuditRecord[]> {
    const rows = this.db.prepare('SELECT * FROM audit_records ORDER BY id DESC LIMIT ?').all(limit) as Row[];
    return rows.map(toRecord);
  }

  async claim(key: string, expiresAt: Date, now: Date): Promise<boolean> {
    const result = this.db.transaction(() => {
      this.db.prepare('DELETE FROM used_token_signatures WHERE expires_at < ?').run(now.getTime());
      return this.db.prepare('INSERT OR IGNORE INTO used_token_signatures (signature, expires_at) VALUES (?, ?)').run(key, expiresAt.getTime());
    })();
    return result.changes === 1;
  }

  async ready(): Promise<void> {
    // A write probe: a store that can be read but not written must not report ready.
    this.db.transaction(() => this.db.prepare('DELETE FROM used_token_signatures WHERE expires_at < 0').run()).immediate();
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

interface Row {
  id: number;
  kind: 'issued' | 'refused';
  at: string;
  request_id: string;
  source_ip: string;
  caller_arn: string | null;
  account_id: string | null;
  code: string | null;
  serial: string | null;
  key_id: string | null;
  certificate_type: 'user' | 'host' | null;
  principals: string | null;
  valid_after: number | null;
  valid_before: number | null;
  public_key_fingerprint: string | null;
  certificate_fingerprint: string | null;
  ca_fingerprint: string | null;
  reason: string | null;
}

function toRecord(row: Row): AuditRecord {
  const common = { id: row.id, requestId: row.request_id, at: new Date(row.at), sourceIp: row.source_ip };
  if (row.kind === 'refused') {
    return { ...common, kind: 'refused', code: row.code ?? '', ...(row.caller_arn ? { callerArn: row.caller_arn } : {}) };
  }
  return {
    ...common,
    kind: 'issued',
    serial: BigInt(row.serial ?? '0'),
    keyId: row.key_id ?? '',
    certificateType: row.certificate_type ?? 'user',
    principals: JSON.parse(row.principals ?? '[]') as string[],
    validAfter: row.valid_after ?? 0,
    validBefore: row.valid_before ?? 0,
    callerArn: row.caller_arn ?? '',
    accountId: row.account_id ?? '',
    publicKeyFingerprint: row.public_key_fingerprint ?? '',
    certificateFingerprint: row.certificate_fingerprint ?? '',
    caFingerprint: row.ca_fingerprint ?? '',
    ...(row.reason ? { reason: row.reason } : {}),
  };
}
