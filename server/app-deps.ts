// What the service needs, built by main.ts (or a test). A module of its own
// so routes import the type without importing app.ts (no import cycle).
import type { FastifyServerOptions } from 'fastify';
import type { Anchor } from '../protocol/audit-anchor.js';
import type { AnchorResult } from './audit/anchor-publisher.js';
import type { SshPublicKey } from '../protocol/ssh-public-key.js';
import type { AuditLog } from './audit/audit-log.js';
import type { RefusalAggregator } from './audit/refusal-aggregator.js';
import type { CaLists } from './ca/ca-lists.js';
import type { KrlCache } from './revocation/krl-cache.js';
import type { CheckpointKey } from './audit/checkpoint-signer.js';
import type { CertificateAuthority } from './ca/certificate-authority.js';
import type { Signer } from './ca/signer.js';
import type { InstanceDirectory } from './hosts/instance-directory.js';
import type { Metrics } from './metrics.js';
import type { Clock } from './clock.js';
import type { DevInstanceAws } from './dev/dev-instance.js';
import type { DevIdentity } from './dev/dev-sts.js';
import type { Authenticator } from './identity/sts-authenticator.js';
import type { StsEndpointAllowlist } from './identity/sts-endpoints.js';
import type { Policy } from './policy/policy.js';

/** Per-source request limits (rule 16); 0 switches a limit off. */
export interface RateLimits {
  /** Requests per minute per source to routes that take a token (counted before authentication). */
  readonly authenticatedPerMinute: number;
  /**
   * Requests per minute per source to the public lists (KRL, CA keys). Off
   * by default: they serve cached bytes, and a limit there would let one
   * process behind a fleet's shared NAT address starve every instance's KRL
   * refresh.
   */
  readonly publicPerMinute: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = Object.freeze({ authenticatedPerMinute: 300, publicPerMinute: 0 });

/** IPv6 sources are limited per /56: one customer's usual allocation, so a single attacker cannot spread over 256 /64s. */
export const RATE_LIMIT_IPV6_PREFIX = 56;

/** The anchor store and its publisher, as the audit routes use them. */
export interface AuditAnchors {
  readonly location: string;
  anchorNow(): Promise<AnchorResult>;
  newest(limit: number): Promise<Anchor[]>;
}

/** Everything the service needs, built by main.ts (or a test). */
export interface AppDeps {
  /** The server's canonical URL (its origin), which every token must name (DESIGN.md §2). */
  readonly audience: () => string;
  readonly endpoints: StsEndpointAllowlist;
  readonly authenticator: Authenticator;
  readonly policy: Policy;
  readonly userSigner: Signer;
  /** The user CA key that signs after the next rotation: published now, so instances trust it in time. */
  readonly userCaNext?: SshPublicKey;
  /** User CA keys that no longer sign: published until every certificate they signed has expired. */
  readonly userCaRetired?: readonly SshPublicKey[];
  /** The host CA, when configured: published for known_hosts. */
  readonly hostSigner?: Signer;
  readonly hostCaNext?: SshPublicKey;
  readonly hostCaRetired?: readonly SshPublicKey[];
  /** Asks EC2 about the instance a host certificate is for (issue 12); without it no host certificates are issued. */
  readonly instances?: InstanceDirectory;
  readonly ca: CertificateAuthority;
  readonly audit: AuditLog;
  /** Signs audit checkpoints; its public key is published. */
  readonly checkpoints: CheckpointKey;
  /** Where the chain head is anchored (issue 16); absent: nowhere (POST /v1/audit/anchor answers 404). */
  readonly anchors?: AuditAnchors;
  readonly clock: Clock;
  /** Default DEFAULT_RATE_LIMITS. */
  readonly rateLimits?: RateLimits;
  /**
   * Addresses/CIDRs of the proxies (load balancer) in front: only their
   * X-Forwarded-For is believed, taking the right-most untrusted address
   * (rule 21). Empty: forwarded headers are ignored.
   */
  readonly trustedProxies?: readonly string[];
  /** How often anonymous refusals go on the chain as one summary record; default 60 s. */
  readonly refusalSummaryIntervalMs?: number;
  /** Operators' metrics (served by main.ts on a listener of its own); a private registry when absent. */
  readonly metrics?: Metrics;
  /** Present only in dev mode: enables /dev/sts. */
  readonly devSts?: DevIdentity;
  /** Dev mode only: the dev instance, its /dev/ec2/ and /dev/imds endpoints (host certificates without AWS). */
  readonly devInstance?: DevInstanceAws;
  readonly logger?: FastifyServerOptions['logger'];
}

/** What routes receive: the deps plus the app's own refusal counter and caches. */
export interface RouteDeps extends AppDeps {
  readonly metrics: Metrics;
  readonly refusals: RefusalAggregator;
  readonly caLists: CaLists;
  readonly krl: KrlCache;
}
