// The shapes of the auditor's reads (issue 16), shared by the server that
// answers them and the client (and its local view) that shows them.

/** Which callers a `caller` filter stood for: an ARN as given, or a short name resolved. */
export interface CallerMatch {
  readonly query: string;
  readonly by: 'arn' | 'name';
  /** The caller ARNs it matched (a name may match several identities, or none). */
  readonly matched: readonly string[];
}

/** A certificate valid now that no revocation in force names (GET /v1/audit/active). */
export interface ActiveCertificate {
  readonly seq: number;
  readonly serial: string;
  readonly keyId: string;
  readonly certificateType: string;
  readonly principals: readonly string[];
  readonly callerArn: string;
  readonly sourceIp: string;
  /** When it was issued (the record's time), ISO 8601. */
  readonly issuedAt: string;
  /** Unix seconds. */
  readonly validAfter: number;
  readonly validBefore: number;
  readonly publicKeyFingerprint: string;
  readonly policyRule?: string;
  readonly reason?: string;
}

/** GET /v1/audit/active */
export interface ActiveAnswer {
  readonly certificates: ActiveCertificate[];
  /** More certificates are valid than the limit let through. */
  readonly truncated: boolean;
  readonly caller?: CallerMatch;
}

/** Records per hour (GET /v1/audit/stats), for the audit view's chart. */
export interface HourlyCounts {
  /** The hour's start, `YYYY-MM-DDTHH:00:00.000Z`. */
  readonly hour: string;
  readonly issued: number;
  /** Refused requests: one each, plus every anonymous refusal a summary counted. */
  readonly refused: number;
  readonly revoked: number;
}
