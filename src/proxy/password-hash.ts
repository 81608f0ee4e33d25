/**
 * The password schemes of nginx's auth_basic_user_file (htpasswd files):
 * {PLAIN}, {SHA}, {SSHA}, and the crypt(3) schemes $apr1$ and $1$ (MD5-crypt),
 * $5$ and $6$ (SHA-crypt). nginx hands anything without a {SCHEME} prefix to
 * the system's crypt(3); fulcrum implements the crypt schemes a current
 * glibc/libxcrypt or Apache's htpasswd produce, except bcrypt and the old DES
 * crypt, which need a library: those are reported at config load and never
 * match.
 *
 * A stored hash is parsed once (at config load) into a checker; checking a
 * password computes the hash again and compares in constant time.
 */
import * as crypto from 'node:crypto';

/** Checks a password (the bytes the client sent) against one stored hash. */
export type PasswordCheck = (password: Buffer) => boolean;

export type ParsedHash = { check: PasswordCheck } | { unsupported: string };

const CRYPT_ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export function parseStoredHash(stored: string): ParsedHash {
  if (stored.startsWith('{PLAIN}')) {
    const expected = Buffer.from(stored.slice(7), 'latin1');
    return { check: (pw) => sameBytes(pw, expected) };
  }
  if (stored.startsWith('{SHA}')) {
    const expected = Buffer.from(stored.slice(5), 'base64');
    return { check: (pw) => sameBytes(crypto.createHash('sha1').update(pw).digest(), expected) };
  }
  if (stored.startsWith('{SSHA}')) {
    const decoded = Buffer.from(stored.slice(6), 'base64');
    if (decoded.length <= 20) return { unsupported: 'a {SSHA} hash without salt' };
    const digest = decoded.subarray(0, 20);
    const salt = decoded.subarray(20);
    return { check: (pw) => sameBytes(crypto.createHash('sha1').update(pw).update(salt).digest(), digest) };
  }
  if (stored.startsWith('$apr1$') || stored.startsWith('$1$')) {
    const magic = stored.startsWith('$1$') ? '$1$' : '$apr1$';
    const salt = cryptSalt(stored.slice(magic.length), 8);
    const expected = Buffer.from(stored, 'latin1');
    return { check: (pw) => sameBytes(Buffer.from(md5Crypt(pw, magic, salt), 'latin1'), expected) };
  }
  if (stored.startsWith('$5$') || stored.startsWith('$6$')) {
    const spec = parseShaCryptSettings(stored);
    if (spec === undefined) return { unsupported: `a malformed ${stored.slice(0, 3)} hash` };
    const expected = Buffer.from(stored, 'latin1');
    const algorithm = stored[1] === '5' ? 'sha256' : 'sha512';
    return { check: (pw) => sameBytes(Buffer.from(shaCrypt(algorithm, pw, spec), 'latin1'), expected) };
  }
  if (/^\$2[abxy]?\$/.test(stored)) return { unsupported: 'bcrypt ($2y$) hashes' };
  if (stored.startsWith('$')) return { unsupported: `crypt scheme "${stored.slice(0, stored.indexOf('$', 1) + 1)}"` };
  if (stored.startsWith('{')) return { unsupported: `scheme "${stored.slice(0, stored.indexOf('}') + 1)}"` };
  return { unsupported: 'traditional DES crypt hashes' };
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  // The length of a stored hash is no secret; its bytes are.
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

/** The salt of a crypt hash: up to `max` characters, ending at '$'. */
function cryptSalt(rest: string, max: number): string {
  const end = rest.indexOf('$');
  return rest.slice(0, Math.min(end < 0 ? rest.length : end, max));
}

/** Poul-Henning Kamp's MD5-crypt, as in FreeBSD ($1$) and Apache ($apr1$, the same with another magic). */
export function md5Crypt(password: Buffer, magic: string, salt: string): string {
  const saltBytes = Buffer.from(salt, 'latin1');
  let final = crypto.createHash('md5').update(password).update(saltBytes).update(password).digest();
  const ctx = crypto.createHash('md5').update(password).update(magic, 'latin1').update(saltBytes);
  for (let left = password.length; left > 0; left -= 16) ctx.update(final.subarray(0, Math.min(left, 16)));
  const zero = Buffer.alloc(1);
  const first = password.subarray(0, 1);
  for (let i = password.length; i !== 0; i >>>= 1) ctx.update((i & 1) !== 0 ? zero : first);
  final = ctx.digest();
  for (let i = 0; i < 1000; i++) {
    const round = crypto.createHash('md5');
    round.update((i & 1) !== 0 ? password : final);
    if (i % 3 !== 0) round.update(saltBytes);
    if (i % 7 !== 0) round.update(password);
    round.update((i & 1) !== 0 ? final : password);
    final = round.digest();
  }
  let out = magic + salt + '$';
  for (const [a, b, c] of [
    [0, 6, 12],
    [1, 7, 13],
    [2, 8, 14],
    [3, 9, 15],
    [4, 10, 5],
  ] as const) {
    out += to64((final[a]! << 16) | (final[b]! << 8) | final[c]!, 4);
  }
  return out + to64(final[11]!, 2);
}

function to64(value: number, chars: number): string {
  let out = '';
  for (let i = 0; i < chars; i++) {
    out += CRYPT_ALPHABET[value & 0x3f];
    value >>>= 6;
  }
  return out;
}

interface ShaCryptSettings {
  salt: string;
  rounds: number;
  /** "rounds=N$" was given, so it is part of the output too. */
  explicitRounds: boolean;
}

const SHA_CRYPT_DEFAULT_ROUNDS = 5000;

function parseShaCryptSettings(stored: string): ShaCryptSettings | undefined {
  let rest = stored.slice(3);
  let rounds = SHA_CRYPT_DEFAULT_ROUNDS;
  let explicitRounds = false;
  const m = /^rounds=([0-9]+)\$/.exec(rest);
  if (m !== null) {
    // glibc clamps the count into its range rather than refusing it.
    rounds = Math.min(Math.max(Number(m[1]), 1000), 999_999_999);
    explicitRounds = true;
    rest = rest.slice(m[0].length);
  }
  if (rest.indexOf('$') < 0) return undefined;
  return { salt: cryptSalt(rest, 16), rounds, explicitRounds };
}

/** The byte order of SHA-crypt's output encoding (Ulrich Drepper's specification). */
const SHA256_ORDER = [
  [0, 10, 20], [21, 1, 11], [12, 22, 2], [3, 13, 23], [24, 4, 14],
  [15, 25, 5], [6, 16, 26], [27, 7, 17], [18, 28, 8], [9, 19, 29],
] as const;

function sha512Order(): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (let k = 0; k < 21; k++) {
    const r = k % 3;
    out.push(r === 0 ? [k, k + 21, k + 42] : r === 1 ? [k + 21, k + 42, k] : [k + 42, k, k + 21]);
  }
  return out;
}
const SHA512_ORDER = sha512Order();

/** SHA-crypt ($5$ SHA-256, $6$ SHA-512), as glibc's crypt(3) computes it. */
export function shaCrypt(algorithm: 'sha256' | 'sha512', key: Buffer, spec: ShaCryptSettings): string {
  const hash = (): crypto.Hash => crypto.createHash(algorithm);
  const size = algorithm === 'sha256' ? 32 : 64;
  const salt = Buffer.from(spec.salt, 'latin1');
  const b = hash().update(key).update(salt).update(key).digest();
  const a = hash().update(key).update(salt);
  a.update(repeatTo(b, key.length));
  for (let n = key.length; n > 0; n >>>= 1) a.update((n & 1) !== 0 ? b : key);
  const aDigest = a.digest();
  const dp = hash();
  for (let i = 0; i < key.length; i++) dp.update(key);
  const p = repeatTo(dp.digest(), key.length);
  const ds = hash();
  for (let i = 0; i < 16 + aDigest[0]!; i++) ds.update(salt);
  const s = repeatTo(ds.digest(), salt.length);
  let c = aDigest;
  for (let i = 0; i < spec.rounds; i++) {
    const round = hash();
    round.update((i & 1) !== 0 ? p : c);
    if (i % 3 !== 0) round.update(s);
    if (i % 7 !== 0) round.update(p);
    round.update((i & 1) !== 0 ? c : p);
    c = round.digest();
  }
  let out = (algorithm === 'sha256' ? '$5$' : '$6$') + (spec.explicitRounds ? `rounds=${spec.rounds}$` : '') + spec.salt + '$';
  for (const [x, y, z] of size === 32 ? SHA256_ORDER : SHA512_ORDER) out += to64((c[x]! << 16) | (c[y]! << 8) | c[z]!, 4);
  return size === 32 ? out + to64((c[31]! << 8) | c[30]!, 3) : out + to64(c[63]!, 2);
}

/** `bytes` repeated to `length` bytes. */
function repeatTo(bytes: Buffer, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i += bytes.length) bytes.copy(out, i, 0, Math.min(bytes.length, length - i));
  return out;
}
