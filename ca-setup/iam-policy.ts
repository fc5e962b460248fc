// `sshca-setup policy`: the least-privilege IAM policy for the sshca server.
import { KMS_KEY_SPECS } from '../server/ca/kms-signer.js';

/**
 * kms:Sign on exactly these keys, only with the algorithm and message type
 * sshca uses for each (so a stolen role cannot sign differently);
 * GetPublicKey/DescribeKey in their own statement. Nothing else.
 */
export function iamPolicyFor(keys: ReadonlyArray<{ keyArn: string; keySpec: string }>): object {
  const statements: object[] = keys.map((k, i) => {
    const spec = KMS_KEY_SPECS[k.keySpec];
    if (!spec) throw new Error(`key spec ${k.keySpec} is not usable by sshca`);
    return {
      Sid: `SshcaSign${i}`,
      Effect: 'Allow',
      Action: 'kms:Sign',
      Resource: k.keyArn,
      Condition: { StringEquals: { 'kms:SigningAlgorithm': spec.kms, 'kms:MessageType': spec.messageType } },
    };
  });
  statements.push({ Sid: 'SshcaReadKeys', Effect: 'Allow', Action: ['kms:GetPublicKey', 'kms:DescribeKey'], Resource: keys.map((k) => k.keyArn) });
  return { Version: '2012-10-17', Statement: statements };
}
