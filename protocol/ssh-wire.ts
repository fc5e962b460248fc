// SSH wire encoding (RFC 4251 §5): the one encoder/decoder both server and
// client use for keys, certificates and signatures.

/** Raised when bytes do not follow the SSH wire format. */
export class SshWireError extends Error {
  readonly code = 'SSH_WIRE_INVALID';
}

/** Appends SSH wire values to a growing buffer. */
export class SshWriter {
  private readonly parts: Buffer[] = [];

  uint32(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new SshWireError('uint32 out of range');
    const b = Buffer.alloc(4);
    b.writeUInt32BE(value);
    this.parts.push(b);
    return this;
  }

  uint64(value: bigint): this {
    if (value < 0n || value > 0xffffffffffffffffn) throw new SshWireError('uint64 out of range');
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(value);
    this.parts.push(b);
    return this;
  }

  /** A length-prefixed byte string; a JS string is written as UTF-8. */
  string(value: Uint8Array | string): this {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
    this.uint32(bytes.length);
    this.parts.push(bytes);
    return this;
  }

  /** A non-negative mpint from big-endian magnitude bytes (leading zeros allowed in the input). */
  mpint(magnitude: Uint8Array): this {
    return this.string(encodeMpintMagnitude(magnitude));
  }

  raw(bytes: Uint8Array): this {
    this.parts.push(Buffer.from(bytes));
    return this;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/**
 * The body of a non-negative mpint: minimal, with one 0x00 in front when the
 * top bit is set (otherwise OpenSSH reads it as negative). Zero is empty.
 */
export function encodeMpintMagnitude(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length && magnitude[start] === 0) start++;
  const trimmed = Buffer.from(magnitude.subarray(start));
  if (trimmed.length > 0 && (trimmed[0]! & 0x80) !== 0) return Buffer.concat([Buffer.from([0]), trimmed]);
  return trimmed;
}

/** Reads SSH wire values from a buffer, refusing truncation. */
export class SshReader {
  private offset = 0;

  constructor(private readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  get position(): number {
    return this.offset;
  }

  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  uint64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.offset);
    this.offset += 8;
    return v;
  }

  string(): Buffer {
    const len = this.uint32();
    this.need(len);
    const v = this.buf.subarray(this.offset, this.offset + len);
    this.offset += len;
    return v;
  }

  /** A UTF-8 string (names, principals, key ids). */
  text(): string {
    return this.string().toString('utf8');
  }

  /** A non-negative mpint in its minimal form; returns the magnitude. */
  mpint(): Buffer {
    const body = this.string();
    if (body.length === 0) return body;
    if ((body[0]! & 0x80) !== 0) throw new SshWireError('negative mpint');
    if (body[0] === 0 && (body.length === 1 || (body[1]! & 0x80) === 0)) throw new SshWireError('non-minimal mpint');
    return body[0] === 0 ? body.subarray(1) : body;
  }

  /** Asserts every byte was consumed: trailing data is a parsing ambiguity. */
  end(): void {
    if (this.remaining !== 0) throw new SshWireError('trailing bytes');
  }

  private need(n: number): void {
    if (this.offset + n > this.buf.length) throw new SshWireError('truncated');
  }
}

/** Splits a packed SSH list (principals, options) into its strings. */
export function readStringList(packed: Buffer): string[] {
  const r = new SshReader(packed);
  const out: string[] = [];
  while (r.remaining > 0) out.push(r.text());
  return out;
}
