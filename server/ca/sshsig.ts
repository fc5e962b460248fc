// Detached SSH signatures (PROTOCOL.sshsig), made through a Signer so a KMS
// CA key can sign them. `ssh-keygen -Y verify` checks them: instances use
// this to accept a new CA list only from a key they already trust.
import { createHash } from 'node:crypto';
import { SshWriter } from '../../protocol/ssh-wire.js';
import type { Signer } from './signer.js';

const MAGIC = Buffer.from('SSHSIG');

/** The namespace CA lists are signed in: a signature for one purpose never serves another. */
export const CA_LIST_NAMESPACE = 'sshca-ca-list';

/** An armored SSHSIG over `message` in `namespace`. */
export async function signSshsig(signer: Signer, namespace: string, message: Uint8Array): Promise<string> {
  const hash = createHash('sha512').update(message).digest();
  const signedData = new SshWriter().raw(MAGIC).string(namespace).string('').string('sha512').string(hash).toBuffer();
  const signature = await signer.sign(signedData);
  const blob = new SshWriter().raw(MAGIC).uint32(1).string(signer.publicKey().blob).string(namespace).string('').string('sha512').string(signature).toBuffer();
  const b64 = blob.toString('base64').replace(/.{1,70}/g, '$&\n');
  return `-----BEGIN SSH SIGNATURE-----\n${b64}-----END SSH SIGNATURE-----\n`;
}
