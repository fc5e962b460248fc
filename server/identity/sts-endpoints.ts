// The STS endpoints a token may name (rule 2): compared as exact strings,
// each entry carrying the region and partition its signatures must use.
import type { Partition } from './caller-identity.js';

/** One allowlisted STS endpoint. */
export interface StsEndpoint {
  readonly url: string;
  readonly region: string;
  readonly partition: Partition;
}

/** The configured endpoint URL is not a known STS endpoint. */
export class StsEndpointError extends Error {
  readonly code = 'CONFIG_STS_ENDPOINT';
}

const AWS_REGION = /^(?:us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d{1,2}$/;
const GOV_REGION = /^us-gov-(?:east|west)-1$/;
const CN_REGION = /^cn-(?:north|northwest)-1$/;
const FIPS_REGIONS = new Set(['us-east-1', 'us-east-2', 'us-west-1', 'us-west-2']);

/**
 * Recognises a production STS endpoint URL, written exactly as
 * `https://<host>/`: no port, userinfo, path, trailing dot, IP or uppercase.
 */
export function productionStsEndpoint(url: string): StsEndpoint {
  const m = /^https:\/\/([a-z0-9.-]+)\/$/.exec(url);
  const host = m?.[1];
  if (host === 'sts.amazonaws.com') return { url, region: 'us-east-1', partition: 'aws' };
  const regional = host ? /^(sts|sts-fips)\.([a-z0-9-]+)\.(amazonaws\.com|amazonaws\.com\.cn)$/.exec(host) : null;
  if (regional) {
    const [, service, region, domain] = regional as unknown as [string, string, string, string];
    if (domain === 'amazonaws.com.cn') {
      if (service === 'sts' && CN_REGION.test(region)) return { url, region, partition: 'aws-cn' };
    } else if (GOV_REGION.test(region)) {
      return { url, region, partition: 'aws-us-gov' };
    } else if (AWS_REGION.test(region) && (service === 'sts' || FIPS_REGIONS.has(region))) {
      return { url, region, partition: 'aws' };
    }
  }
  throw new StsEndpointError(`${JSON.stringify(url)} is not an AWS STS endpoint written as https://<sts host>/`);
}

/**
 * The endpoints tokens may name. Replaceable only so the embedded default
 * can allowlist its own /dev/sts URL once it knows the port it listens on.
 */
export class StsEndpointAllowlist {
  private entries: readonly StsEndpoint[];

  constructor(entries: readonly StsEndpoint[]) {
    this.entries = Object.freeze([...entries]);
  }

  list(): readonly StsEndpoint[] {
    return this.entries;
  }

  /** Exact string match: no normalisation, so no normalisation tricks. */
  find(url: string): StsEndpoint | undefined {
    return this.entries.find((e) => e.url === url);
  }

  replace(entries: readonly StsEndpoint[]): void {
    this.entries = Object.freeze([...entries]);
  }
}
