// Degenerate-value checks for user public keys (issue 10): numbers that parse
// and that node:crypto happily imports, but that no key generator produces and
// that make signatures meaningless or cheap to forge. ECDSA needs no check
// here: node:crypto's import already refuses every bad point (see
// ssh-public-key.ts and its tests).

/** A public key whose numbers are well-formed but degenerate (wrapped into PublicKeyError 'invalid'). */
export class WeakKeyError extends Error {
  readonly code = 'PUBLIC_KEY_WEAK';
}

// ---- Ed25519 (RFC 8032 §5.1) -------------------------------------------
// node:crypto stores any 32 bytes as an Ed25519 public key without decoding
// them, so the all-zero key, the 8 torsion points and bytes that are no point
// at all are only caught if we decode the point ourselves. Public values only:
// nothing here needs to be constant-time.

const P = 2n ** 255n - 19n;

function mod(a: bigint): bigint {
  const r = a % P;
  return r < 0n ? r + P : r;
}

const LOW_255 = (1n << 255n) - 1n;

/**
 * a mod p for 0 ≤ a < 2^512 (a product of two reduced values) without a
 * division: 2^255 ≡ 19, so the high part folds down times 19. This runs on
 * every request (issue 14), where `%` on 510-bit numbers was most of the cost.
 */
function reduce(a: bigint): bigint {
  let r = (a & LOW_255) + 19n * (a >> 255n);
  r = (r & LOW_255) + 19n * (r >> 255n);
  return r >= P ? r - P : r;
}

/** x^(2^k): k squarings. */
function square(x: bigint, k = 1): bigint {
  let r = x;
  for (let i = 0; i < k; i++) r = reduce(r * r);
  return r;
}

function pow(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  let b = mod(base);
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = reduce(result * b);
    b = reduce(b * b);
  }
  return result;
}

/**
 * z^((p−5)/8) = z^(2^252 − 3) by the addition chain of the Ed25519 reference
 * code: 251 squarings and 11 multiplications, where square-and-multiply needs
 * about 250 of each.
 */
function powP58(z: bigint): bigint {
  const z2 = square(z);
  const z9 = reduce(square(z2, 2) * z);
  const z11 = reduce(z9 * z2);
  const z5 = reduce(square(z11) * z9); // z^(2^5 − 1)
  const z10 = reduce(square(z5, 5) * z5); // z^(2^10 − 1)
  const z20 = reduce(square(z10, 10) * z10);
  const z40 = reduce(square(z20, 20) * z20);
  const z50 = reduce(square(z40, 10) * z10);
  const z100 = reduce(square(z50, 50) * z50);
  const z200 = reduce(square(z100, 100) * z100);
  const z250 = reduce(square(z200, 50) * z50); // z^(2^250 − 1)
  return reduce(square(z250, 2) * z); // z^(2^252 − 3)
}

const inverse = (a: bigint): bigint => pow(a, P - 2n);

// Derived from their definitions rather than pasted as 77-digit literals, so a
// typo cannot silently change the curve.
const D = mod(-121665n * inverse(121666n));
const SQRT_M1 = pow(2n, (P - 1n) / 4n);

/** RFC 8032 §5.1.3 decoding; undefined when the bytes are no canonical point. */
function decodeEd25519Point(encoded: Uint8Array): { x: bigint; y: bigint } | undefined {
  const le = Buffer.from(encoded);
  const sign = le[31]! >> 7;
  le[31]! &= 0x7f;
  const y = BigInt(`0x${Buffer.from(le).reverse().toString('hex')}`);
  // y ≥ p: a second spelling of a point (RFC 8032 says decoding fails). Two
  // spellings of one key would give it two fingerprints.
  if (y >= P) return undefined;
  const yy = (y * y) % P;
  const u = mod(yy - 1n);
  const v = mod(D * yy + 1n);
  // x = sqrt(u/v) via x = u v³ (u v⁷)^((p−5)/8), then fix up or fail.
  const v3 = reduce(reduce(v * v) * v);
  const v7 = reduce(reduce(v3 * v3) * v);
  let x = reduce(reduce(u * v3) * powP58(reduce(u * v7)));
  const vxx = (v * x * x) % P;
  if (vxx === mod(-u)) x = (x * SQRT_M1) % P;
  else if (vxx !== u) return undefined; // u/v is not a square: not on the curve
  if (x === 0n && sign === 1) return undefined; // "−0": a second spelling again
  if (Number(x & 1n) !== sign) x = P - x;
  return { x, y };
}

interface ProjectivePoint {
  readonly X: bigint;
  readonly Y: bigint;
  readonly Z: bigint;
}

/**
 * Doubling in projective coordinates (EFD dbl-2008-bbjlp, a = −1): no
 * inversions, which would cost a 255-bit exponentiation each. Complete on this
 * curve (d is not a square), so Z never becomes 0.
 */
function double({ X, Y, Z }: ProjectivePoint): ProjectivePoint {
  const B = mod((X + Y) * (X + Y));
  const C = mod(X * X);
  const Dy = mod(Y * Y);
  const F = mod(Dy - C); // a·C + D with a = −1
  const J = mod(F - 2n * Z * Z);
  return { X: mod((B - C - Dy) * J), Y: mod(F * (-C - Dy)), Z: mod(F * J) };
}

/**
 * Refuses Ed25519 public keys that are not a canonical curve point or that lie
 * in the small (8-torsion) subgroup — the all-zero key among them. For a
 * small-order A the verifier's [k]A takes at most 8 values, so signatures can
 * be forged for it without any private key; no honest key is ever one.
 */
export function checkEd25519PublicKey(key: Uint8Array): void {
  if (key.length !== 32) throw new WeakKeyError('Ed25519 key must be 32 bytes');
  const point = decodeEd25519Point(key);
  if (!point) throw new WeakKeyError('Ed25519 key is not a canonical curve point');
  // The curve group has order 8·ℓ; 8·A is the identity (0 : Z : Z) exactly
  // when A's order divides 8.
  const eightA = double(double(double({ X: point.x, Y: point.y, Z: 1n })));
  if (eightA.X === 0n && eightA.Y === eightA.Z) throw new WeakKeyError('Ed25519 key is a small-order point');
}

// ---- RSA ---------------------------------------------------------------

/**
 * Largest accepted public exponent, in bits. ssh-keygen and OpenSSL only
 * generate 65537; Go's x/crypto/ssh refuses exponents over 24 bits and
 * Windows CryptoAPI stores them in 32 bits, so no usable key exceeds 32 bits.
 * Larger ones only make each verification cost more (linear in e's length).
 */
export const MAX_RSA_EXPONENT_BITS = 32;

/** Primes below this divide no honest modulus (its factors are ≥ 1024 bits). */
const TRIAL_DIVISION_LIMIT = 1000;

const SMALL_ODD_PRIMES: readonly bigint[] = (() => {
  const composite = new Uint8Array(TRIAL_DIVISION_LIMIT);
  const primes: bigint[] = [];
  for (let i = 3; i < TRIAL_DIVISION_LIMIT; i += 2) {
    if (composite[i]) continue;
    primes.push(BigInt(i));
    for (let j = i * i; j < TRIAL_DIVISION_LIMIT; j += 2 * i) composite[j] = 1;
  }
  return primes;
})();

// Trial division against the product first: one remainder of n, then 167
// remainders of a ~1,400-bit number, however long n is.
const SMALL_PRIMES_PRODUCT = SMALL_ODD_PRIMES.reduce((a, b) => a * b, 1n);

const toBigInt = (magnitude: Uint8Array): bigint => BigInt(`0x${Buffer.from(magnitude).toString('hex') || '0'}`);

/**
 * Refuses RSA public numbers no generator produces: an exponent that is even,
 * below 3 or above MAX_RSA_EXPONENT_BITS, and a modulus that is even or has a
 * prime factor below 1000 (whoever knows that factor can factor n and sign).
 * `e` and `n` are big-endian magnitudes as SshReader.mpint returns them. The
 * size bounds (MIN_RSA_BITS…) stay with the parser: they are policy.
 */
export function checkRsaPublicKey(e: Uint8Array, n: Uint8Array): void {
  // SshReader.mpint already refuses non-minimal mpints (OpenSSH never writes
  // them), so the top byte is nonzero and n's size is its real bit length.
  // Re-checked so this function does not depend on how its caller parsed.
  if (e.length === 0 || e[0] === 0 || n.length === 0 || n[0] === 0) throw new WeakKeyError('RSA numbers must be minimal and nonzero');
  if (e.length * 8 > MAX_RSA_EXPONENT_BITS) throw new WeakKeyError(`RSA exponent above ${MAX_RSA_EXPONENT_BITS} bits`);
  const exponent = toBigInt(e);
  if (exponent < 3n || exponent % 2n === 0n) throw new WeakKeyError('RSA exponent must be odd and at least 3');
  const modulus = toBigInt(n);
  if (modulus % 2n === 0n) throw new WeakKeyError('RSA modulus is even');
  const residue = modulus % SMALL_PRIMES_PRODUCT; // p | n ⇔ p | (n mod ∏p) for each p in the product
  for (const p of SMALL_ODD_PRIMES) {
    if (residue % p === 0n) throw new WeakKeyError('RSA modulus has a small prime factor');
  }
}
