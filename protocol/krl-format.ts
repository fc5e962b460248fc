// OpenSSH KRL format numbers (PROTOCOL.krl), the ones sshca writes
// (server/revocation/krl-encoder.ts) and the client reads back
// (client/krl-reader.ts): one definition, so the two cannot drift apart.

export const KRL_MAGIC = 0x5353484b524c0a00n; // "SSHKRL\n\0"
export const KRL_FORMAT_VERSION = 1;
export const SECTION_CERTIFICATES = 1;
export const SECTION_FINGERPRINT_SHA256 = 5;
export const CERT_SERIAL_LIST = 0x20;
export const CERT_SERIAL_RANGE = 0x21;
export const CERT_SERIAL_BITMAP = 0x22;
export const CERT_KEY_ID = 0x23;
