// The CDK app as `cdk synth` builds it: settings from context, the stack,
// and cdk-nag's AwsSolutions checks. Tests build the same app.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { SettingsError, settingsFromContext } from './sshca-settings.js';
import { SshcaStack } from './sshca-stack.js';

/** infra/cdk: relative `file:` policies are read from here. */
export const CDK_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The repository root: the Dockerfile's build context. */
export const REPO_ROOT = join(CDK_DIR, '..', '..');

/** Adds the sshca stack (context `stackName`, default Sshca) and the AwsSolutions checks to `app`. */
export function buildSshcaApp(app: App): SshcaStack {
  const settings = settingsFromContext(app.node, CDK_DIR);
  const account = (app.node.tryGetContext('account') as string | undefined) ?? process.env.CDK_DEFAULT_ACCOUNT;
  // The region must be known at synth (the load balancer's access-log bucket
  // policy names the region's ELB principal): -c region=…, else the CLI's
  // profile region, else cdk.json's defaultRegion (so offline synth works).
  const region = (app.node.tryGetContext('region') as string | undefined) ?? process.env.CDK_DEFAULT_REGION ?? (app.node.tryGetContext('defaultRegion') as string | undefined);
  if (!region) throw new SettingsError('context region: required (-c region=eu-west-1, or defaultRegion in cdk.json)');
  const stack = new SshcaStack(app, (app.node.tryGetContext('stackName') as string | undefined) ?? 'Sshca', {
    settings,
    repoRoot: REPO_ROOT,
    // Without credentials (offline synth) the account stays unknown: AZs are
    // then chosen at deploy time (Fn::GetAZs), with no lookup at synth.
    env: { ...(account ? { account } : {}), region },
  });
  // Every finding is an error unless acknowledged next to the resource, with its reason.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return stack;
}

/** cdk.json's context (feature flags and defaults): what `cdk synth` passes; tests start from it. */
export function cdkJsonContext(): Record<string, unknown> {
  return (JSON.parse(readFileSync(join(CDK_DIR, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> }).context;
}
