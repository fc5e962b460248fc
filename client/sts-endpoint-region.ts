// Which STS endpoint the client signs for. Light on purpose: no AWS SDK.

/** The region a token's credential scope must name for an STS endpoint URL. */
export function stsRegionOf(endpoint: string): string {
  const host = new URL(endpoint).hostname;
  // sts.<r>.amazonaws.com(.cn), sts-fips.<r>.amazonaws.com, and VPC endpoints (….sts.<r>.vpce.amazonaws.com).
  const m = /(?:^|\.)sts(?:-fips)?\.([a-z]{2}(?:-[a-z]+)+-\d{1,2})\.(?:vpce\.)?amazonaws\.com(?:\.cn)?$/.exec(host);
  // The global endpoint and the embedded default's /dev/sts/ both sign for us-east-1.
  return m?.[1] ?? 'us-east-1';
}

/** Picks the allowlisted STS endpoint in the preferred region, else the first. */
export function chooseEndpoint(endpoints: readonly string[], region: string | undefined): string | undefined {
  return (region ? endpoints.find((e) => stsRegionOf(e) === region) : undefined) ?? endpoints[0];
}
