// Where a CA key lives, as configured: `kms:<key ARN>` (or an alias, with a
// warning) or `file:<absolute path>`.
import { isAbsolute } from 'node:path';

export type KeyReference =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'kms'; readonly keyId: string; readonly region: string; readonly isAlias: boolean };

/** The reference is not one of the accepted forms. */
export class KeyReferenceError extends Error {
  readonly code = 'CONFIG_KEY_REFERENCE';
}

const KMS_ARN = /^arn:(aws|aws-us-gov|aws-cn):kms:([a-z]{2}(?:-[a-z]+)+-\d{1,2}):(\d{12}):(key\/(?:mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})|alias\/[a-zA-Z0-9/_-]{1,250})$/;

/** Parses a key reference; `defaultRegion` serves bare `kms:alias/…` references. */
export function parseKeyReference(text: string, defaultRegion: string | undefined): KeyReference {
  if (text.startsWith('file:')) {
    const path = text.slice('file:'.length);
    if (!isAbsolute(path)) throw new KeyReferenceError(`${text}: a file key needs an absolute path`);
    return { kind: 'file', path };
  }
  if (text.startsWith('kms:')) {
    const id = text.slice('kms:'.length);
    const arn = KMS_ARN.exec(id);
    if (arn) return { kind: 'kms', keyId: id, region: arn[2]!, isAlias: arn[4]!.startsWith('alias/') };
    if (/^alias\/[a-zA-Z0-9/_-]{1,250}$/.test(id)) {
      if (!defaultRegion) throw new KeyReferenceError(`${text}: a bare alias needs AWS_REGION (better: use the key ARN)`);
      return { kind: 'kms', keyId: id, region: defaultRegion, isAlias: true };
    }
    throw new KeyReferenceError(`${text}: expected kms:arn:<partition>:kms:<region>:<account>:key/<id>`);
  }
  throw new KeyReferenceError(`${JSON.stringify(text)} is neither kms:<key ARN> nor file:<absolute path>`);
}
