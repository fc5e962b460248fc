// The EC2 clients the server asks DescribeInstances with (issue 12): built
// here, used only through the InstanceDirectory; main.ts decides the options.
import { EC2Client } from '@aws-sdk/client-ec2';
import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import type { AwsCredentialIdentity } from '@smithy/types';
import { stsRegionOf } from '../../client/sts-endpoint-region.js';

/** At most this many EC2 clients (account × region) are kept; a request can name any region. */
const MAX_EC2_CLIENTS = 64;

/**
 * EC2 clients for DescribeInstances, one per account and region, built on
 * first use: with `role`, through credentials of that read-only role assumed
 * in the instance's account (`{account}` filled in); otherwise the server's
 * own. Timeouts and adaptive retries as for KMS.
 */
export function ec2Clients(options: { role?: string; endpoint?: () => string | undefined; stsEndpoint?: string; credentials?: AwsCredentialIdentity; maxAttempts?: number }): { clientFor: (accountId: string, region: string) => EC2Client; destroy(): void } {
  const clients = new Map<string, EC2Client>();
  return {
    clientFor(accountId, region) {
      const key = `${accountId} ${region}`;
      const cached = clients.get(key);
      if (cached) return cached;
      const roleArn = options.role?.replace('{account}', accountId);
      const endpoint = options.endpoint?.();
      const client = new EC2Client({
        region,
        ...(endpoint ? { endpoint } : {}),
        retryMode: 'adaptive',
        maxAttempts: options.maxAttempts ?? 3,
        requestHandler: { connectionTimeout: 2000, requestTimeout: 5000, throwOnRequestTimeout: true },
        ...(roleArn
          ? {
              credentials: fromTemporaryCredentials({
                params: { RoleArn: roleArn, RoleSessionName: 'sshca-describe-instances', DurationSeconds: 900 },
                // One configured STS endpoint signs for its own region, whatever the instance's.
                clientConfig: {
                  ...(options.stsEndpoint ? { region: stsRegionOf(options.stsEndpoint), endpoint: options.stsEndpoint } : { region }),
                  // Whose credentials assume the role: the server's own (default chain unless given).
                  ...(options.credentials ? { credentials: options.credentials } : {}),
                },
              }),
            }
          : options.credentials
            ? { credentials: options.credentials }
            : {}),
      });
      if (clients.size >= MAX_EC2_CLIENTS) {
        const [oldestKey, oldest] = clients.entries().next().value as [string, EC2Client];
        clients.delete(oldestKey);
        oldest.destroy();
      }
      clients.set(key, client);
      return client;
    },
    destroy() {
      for (const client of clients.values()) client.destroy();
      clients.clear();
    },
  };
}
