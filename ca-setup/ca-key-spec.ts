// The CA key specs sshca-setup offers, by their sshca names.

/** `--key-spec` name → KMS KeySpec. Ed25519 first: it is the default and recommended. */
export const CA_KEY_SPECS: Readonly<Record<string, string>> = {
  ed25519: 'ECC_NIST_EDWARDS25519',
  'ecdsa-p256': 'ECC_NIST_P256',
  'ecdsa-p384': 'ECC_NIST_P384',
  'ecdsa-p521': 'ECC_NIST_P521',
  'rsa-2048': 'RSA_2048',
  'rsa-3072': 'RSA_3072',
  'rsa-4096': 'RSA_4096',
};
