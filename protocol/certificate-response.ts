// The 201 answer of both certificate routes (POST /v1/certs/user and
// /v1/certs/host): what the server sends and the client reads, defined once.

export interface CertificateResponse {
  /** The `-cert.pub` line. */
  readonly certificate: string;
  /** Decimal: a 64-bit number. */
  readonly serial: string;
  readonly keyId: string;
  readonly principals: readonly string[];
  /** ISO-8601 UTC. */
  readonly validAfter: string;
  readonly validBefore: string;
}
