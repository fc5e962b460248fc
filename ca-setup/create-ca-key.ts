// `sshca-setup create`: a CA key in KMS, idempotent by alias.
import { CreateAliasCommand, CreateKeyCommand, DescribeKeyCommand, ListAliasesCommand, ListResourceTagsCommand, type KMSClient } from '@aws-sdk/client-kms';
import { SetupError } from './setup-error.js';

export interface CreatedKey {
  readonly keyArn: string;
  readonly keySpec: string;
  readonly alias: string;
  /** False when the alias already named a suitable key. */
  readonly created: boolean;
}

async function aliasTarget(kms: Pick<KMSClient, 'send'>, alias: string): Promise<string | undefined> {
  let marker: string | undefined;
  do {
    const page = await kms.send(new ListAliasesCommand({ ...(marker ? { Marker: marker } : {}), Limit: 100 }));
    const hit = page.Aliases?.find((a) => a.AliasName === alias);
    if (hit) return hit.TargetKeyId;
    marker = page.Truncated ? page.NextMarker : undefined;
  } while (marker);
  return undefined;
}

/** The `sshca:kind` tag sshca-setup gave the key (undefined: none, a key made some other way). */
async function kindTag(kms: Pick<KMSClient, 'send'>, keyId: string): Promise<string | undefined> {
  let marker: string | undefined;
  do {
    const page = await kms.send(new ListResourceTagsCommand({ KeyId: keyId, ...(marker ? { Marker: marker } : {}) }));
    const tag = page.Tags?.find((t) => t.TagKey === 'sshca:kind');
    if (tag) return tag.TagValue;
    marker = page.Truncated ? page.NextMarker : undefined;
  } while (marker);
  return undefined;
}

/**
 * Returns the key the alias names, if it is a signing key of the wanted
 * spec and not the other CA's; otherwise creates one (tagged with its kind)
 * and points the alias at it. Running it twice creates one key.
 */
export async function createCaKey(kms: Pick<KMSClient, 'send'>, options: { kind: 'user' | 'host'; keySpec: string; alias: string }): Promise<CreatedKey> {
  const existing = await aliasTarget(kms, options.alias);
  if (existing) {
    const meta = (await kms.send(new DescribeKeyCommand({ KeyId: options.alias }))).KeyMetadata;
    if (!meta?.Arn || meta.KeySpec !== options.keySpec || meta.KeyUsage !== 'SIGN_VERIFY') {
      throw new SetupError('SETUP_ALIAS_CONFLICT', `${options.alias} already names ${meta?.Arn ?? existing} (${meta?.KeySpec}/${meta?.KeyUsage}), not a ${options.keySpec} signing key; choose another alias`);
    }
    // One key for both CAs would let every host certificate double as a user
    // certificate's signer and make rotating one rotate both: refused.
    const kind = await kindTag(kms, meta.Arn);
    if (kind !== undefined && kind !== options.kind) {
      throw new SetupError('SETUP_KIND_CONFLICT', `${options.alias} names ${meta.Arn}, which is the ${kind} CA key; the ${options.kind} CA needs a key of its own: choose another alias (e.g. alias/sshca-${options.kind}-ca)`);
    }
    return { keyArn: meta.Arn, keySpec: meta.KeySpec, alias: options.alias, created: false };
  }
  const created = await kms.send(
    new CreateKeyCommand({
      KeySpec: options.keySpec as never,
      KeyUsage: 'SIGN_VERIFY',
      Description: `sshca ${options.kind} certificate authority`,
      Tags: [
        { TagKey: 'sshca:kind', TagValue: options.kind },
        { TagKey: 'sshca:managed-by', TagValue: 'sshca-setup' },
      ],
    }),
  );
  const keyArn = created.KeyMetadata?.Arn;
  if (!keyArn) throw new SetupError('SETUP_KMS_RESPONSE', 'CreateKey returned no key ARN');
  await kms.send(new CreateAliasCommand({ AliasName: options.alias, TargetKeyId: keyArn }));
  return { keyArn, keySpec: options.keySpec, alias: options.alias, created: true };
}
