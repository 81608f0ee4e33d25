/**
 * TLS server settings from nginx's ssl_* directives, with a secure default:
 * Mozilla "intermediate" (TLS 1.2 and 1.3, ECDHE with AES-GCM or
 * ChaCha20-Poly1305, no server cipher preference). Explicit settings in the
 * config (the seed's `ssl_ciphers HIGH:!aNULL:!MD5`,
 * `ssl_prefer_server_ciphers on`, `ssl_session_timeout 1h`) are honoured.
 *
 * Session resumption: session IDs through an in-memory cache sized from
 * ssl_session_cache; session tickets only when ssl_session_tickets is on,
 * with keys rotated (never one static key for the process lifetime).
 */
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as tls from 'node:tls';
import type { TlsServerConfig } from '../runtime/table.js';

/** Mozilla intermediate, guideline 5.7 / 6.0: ECDHE + AEAD only, plus the TLS 1.3 suites (set separately by OpenSSL). */
export const INTERMEDIATE_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
export const INTERMEDIATE_CURVES = 'X25519:prime256v1:secp384r1';

/** IANA ids and authentication of the intermediate TLS 1.2 suites, in order. */
const INTERMEDIATE_SUITES = new Map<number, 'ec' | 'rsa'>([
  [0xc02b, 'ec'],
  [0xc02f, 'rsa'],
  [0xc02c, 'ec'],
  [0xc030, 'rsa'],
  [0xcca9, 'ec'],
  [0xcca8, 'rsa'],
]);

const suiteCache = new Map<string, Map<number, 'ec' | 'rsa'>>();

/**
 * The TLS 1.2 suites an OpenSSL cipher string enables that authenticate with
 * an ECDSA or RSA certificate (IANA id -> type), in OpenSSL's order: from
 * `openssl ciphers -V`, once per string. Used to tell which certificate a
 * client would get (client-hello.ts).
 */
export function serverSuites(ciphers: string | undefined): Map<number, 'ec' | 'rsa'> {
  if (ciphers === undefined) return INTERMEDIATE_SUITES;
  const cached = suiteCache.get(ciphers);
  if (cached !== undefined) return cached;
  const out = new Map<number, 'ec' | 'rsa'>();
  try {
    const text = execFileSync('openssl', ['ciphers', '-V', ciphers], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    for (const m of text.matchAll(/0x([0-9A-F]{2}),0x([0-9A-F]{2}) - \S+\s+(TLSv1\.2|SSLv3)\s+Kx=\S+\s+Au=(ECDSA|RSA)\b/g)) {
      out.set(parseInt(m[1]! + m[2]!, 16), m[4] === 'ECDSA' ? 'ec' : 'rsa');
    }
  } catch {
    return INTERMEDIATE_SUITES;
  }
  suiteCache.set(ciphers, out);
  return out;
}
const TLS13_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

export interface CertificatePair {
  cert: string | Buffer;
  key: string | Buffer;
}

function versionRange(protocols: readonly string[]): { minVersion: tls.SecureVersion; maxVersion: tls.SecureVersion } {
  const order: tls.SecureVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
  const enabled = order.filter((v) => protocols.includes(v));
  if (enabled.length === 0) return { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' };
  return { minVersion: enabled[0]!, maxVersion: enabled[enabled.length - 1]! };
}

/** Options for tls.createSecureContext from a server's ssl_* settings and its certificates. */
export function secureContextOptions(config: TlsServerConfig, pairs: readonly CertificatePair[]): tls.SecureContextOptions {
  const { minVersion, maxVersion } = versionRange(config.protocols);
  // "HIGH:!aNULL:!MD5" (nginx's own default, and the seed's) admits CBC and
  // CCM suites; we keep the operator's string when given, and Mozilla's
  // intermediate list otherwise.
  const ciphers = config.ciphers ?? INTERMEDIATE_CIPHERS;
  return {
    // ssl_client_certificate / ssl_trusted_certificate: the CAs that verify this server's clients (client-verify.ts).
    ...(config.clientCaFiles !== undefined && config.clientCaFiles.length > 0 ? { ca: config.clientCaFiles.map((f) => fs.readFileSync(f)) } : {}),
    cert: pairs.map((p) => p.cert),
    key: pairs.map((p) => p.key),
    minVersion,
    maxVersion,
    ciphers: `${ciphers}:${TLS13_SUITES}`,
    ecdhCurve: config.ecdhCurve ?? INTERMEDIATE_CURVES,
    honorCipherOrder: config.preferServerCiphers,
    sessionTimeout: Math.max(1, Math.floor(config.sessionTimeoutMs / 1000)),
    // Without tickets, resumption uses session IDs (the cache below).
    // Client-initiated renegotiation is refused, as nginx does (a CPU-exhaustion vector; TLS 1.3 has none).
    secureOptions: (config.sessionTickets ? 0 : crypto.constants.SSL_OP_NO_TICKET) | crypto.constants.SSL_OP_NO_RENEGOTIATION,
  };
}

/**
 * Number of sessions an nginx-style cache spec holds ("shared:SSL:10m"):
 * nginx stores about 4000 sessions per megabyte.
 */
export function sessionCacheCapacity(spec: string | undefined): number {
  if (spec === undefined || spec === 'none' || spec === 'off') return 0;
  let total = 0;
  for (const part of spec.split(/\s+/)) {
    const shared = /^shared:[^:]+:([0-9]+)([kKmM]?)$/.exec(part);
    if (shared !== null) {
      const bytes = +shared[1]! * (shared[2]!.toLowerCase() === 'm' ? 1024 * 1024 : shared[2]!.toLowerCase() === 'k' ? 1024 : 1);
      total += Math.floor((bytes / (1024 * 1024)) * 4000);
    } else if (part.startsWith('builtin')) {
      total += +(part.split(':')[1] ?? 20480);
    }
  }
  return total;
}

/**
 * An LRU-ish session-ID cache with expiry, for tls.Server's
 * newSession/resumeSession events: TLS 1.2 resumption by session ID
 * (clients without tickets, or ssl_session_tickets off).
 *
 * OpenSSL reports TLS 1.3 sessions too, two per connection (one per ticket
 * it sends), though none can ever be found by ID: a TLS 1.3 client resumes
 * with a ticket, and its legacy session ID is random. Kept, they filled the
 * cache with dead entries (at 1,500 new connections a second, the 40,000 of
 * shared:SSL:10m in 13 s) and the old-generation garbage collections that go
 * with them: a quarter fewer new TLS 1.3 connections a second. They are not
 * stored.
 */
export class SessionCache {
  private readonly sessions = new Map<string, { data: Buffer; expires: number }>();

  constructor(
    private readonly capacity: number,
    private readonly ttlMs: number,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  attach(server: tls.Server): void {
    if (this.capacity === 0) return;
    server.on('newSession', (id: Buffer, data: Buffer, done: () => void) => {
      if (sessionProtocolVersion(data) !== TLS1_3_VERSION) this.set(id.toString('hex'), data);
      done();
    });
    server.on('resumeSession', (id: Buffer, done: (err: Error | null, data: Buffer | null) => void) => {
      done(null, this.get(id.toString('hex')) ?? null);
    });
  }

  private set(key: string, data: Buffer): void {
    if (this.sessions.size >= this.capacity) {
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
    this.sessions.set(key, { data, expires: Date.now() + this.ttlMs });
  }

  private get(key: string): Buffer | undefined {
    const entry = this.sessions.get(key);
    if (entry === undefined) return undefined;
    if (entry.expires < Date.now()) {
      this.sessions.delete(key);
      return undefined;
    }
    return entry.data;
  }
}

const TLS1_3_VERSION = 0x0304;

/**
 * The protocol version of a serialized session (OpenSSL's SSL_SESSION_ASN1:
 * SEQUENCE { version INTEGER (1), ssl_version INTEGER, ... }), or -1 when the
 * bytes do not start that way.
 */
export function sessionProtocolVersion(der: Buffer): number {
  if (der.length < 11 || der[0] !== 0x30) return -1;
  const length = der[1]!;
  let i = length < 0x80 ? 2 : 2 + (length & 0x7f);
  if (der[i] !== 0x02 || der[i + 1] !== 0x01 || der[i + 2] !== 0x01) return -1;
  i += 3;
  if (der[i] !== 0x02 || der[i + 1] !== 0x02 || der.length < i + 4) return -1;
  return (der[i + 2]! << 8) | der[i + 3]!;
}

/** Where the secret that ticket keys are derived from is kept, so that every worker (and a binary upgrade's new process) has it. */
export const TICKET_KEY_SEED_ENV = 'FULCRUM_TICKET_KEY_SEED';

/**
 * The secret ticket keys are derived from: 32 random bytes made by the first
 * process that asks (the supervisor, before it forks) and kept in the
 * environment, which its workers and a binary upgrade's new process inherit.
 */
export function ticketKeySeed(env: NodeJS.ProcessEnv = process.env): Buffer {
  let seed = env[TICKET_KEY_SEED_ENV];
  if (seed === undefined || !/^[0-9a-f]{64}$/.test(seed)) {
    seed = crypto.randomBytes(32).toString('hex');
    env[TICKET_KEY_SEED_ENV] = seed;
  }
  return Buffer.from(seed, 'hex');
}

interface TicketKey {
  name: Buffer;
  hmac: Buffer;
  aes: Buffer;
}

/** What Node's ticket key callback returns: [result, HMAC key, AES-128 key, name, IV] (the last two when encrypting). */
type TicketKeyResult = [number, Buffer, Buffer] | [number, Buffer, Buffer, Buffer, Buffer];

/** Node's native SecureContext, as far as the ticket key callback goes (internal: what Node's own test of renewed tickets uses). */
interface NativeContextWithTicketCallback {
  enableTicketKeyCallback?: () => void;
  onticketkeycallback?: (name: Buffer, iv: Buffer, encrypt: boolean) => TicketKeyResult;
}

/**
 * Session ticket keys (when tickets are on). Keys are derived from one
 * secret (ticketKeySeed) and the period number, so every worker, and the new
 * process of a binary upgrade, uses the same key at the same time without a
 * message between them. A key encrypts for `periodMs`
 * (nginx's default keys live as long as its configuration), and tickets
 * of the period before and after still decrypt, so none is refused at a
 * rotation or where two workers' clocks straddle one.
 *
 * Every resumption gets a fresh ticket. TLS 1.3 clients use a ticket once
 * (RFC 8446 C.4; OpenSSL's client, so wrk, and browsers), and Node's own key
 * handling renews none: each resumed connection left the client without a
 * ticket, so every other connection was a full handshake (wrk -H
 * "Connection: close" over TLS 1.3: 50 % resumed, against 99 % for nginx).
 * Renewing needs Node's ticket key callback; where this Node lacks it, the
 * keys are set with setTicketKeys and rotate without renewal.
 */
export class TicketKeys {
  private readonly seed = ticketKeySeed();
  private readonly keys = new Map<number, TicketKey>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly servers: readonly tls.Server[],
    private readonly periodMs: number,
  ) {
    this.reapply();
    // Only the fallback (setTicketKeys) needs telling about a new period; the callback looks the key up per ticket.
    this.timer = setInterval(() => this.reapply(), Math.min(periodMs, 60_000));
    this.timer.unref();
  }

  /** Installs the keys on the servers' current contexts (again after tls.Server#setSecureContext, which starts a context with keys of its own). */
  reapply(): void {
    for (const server of this.servers) {
      const context = (server as unknown as { _sharedCreds?: { context?: NativeContextWithTicketCallback } })._sharedCreds?.context;
      if (context !== undefined && typeof context.enableTicketKeyCallback === 'function') {
        context.onticketkeycallback = (name, _iv, encrypt) => this.onTicketKey(name, encrypt);
        context.enableTicketKeyCallback();
      } else {
        const key = this.keyAt(this.period());
        server.setTicketKeys(Buffer.concat([key.name, key.hmac, key.aes]));
      }
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Encrypting: the current key and a random IV. Decrypting: the key the ticket names, if it is one of the periods around now; 2 asks OpenSSL for a fresh ticket. */
  onTicketKey(name: Buffer, encrypt: boolean, now = Date.now()): TicketKeyResult {
    const period = this.period(now);
    const current = this.keyAt(period);
    if (encrypt) return [1, current.hmac, current.aes, current.name, crypto.randomBytes(16)];
    for (const p of [period, period - 1, period + 1]) {
      const key = this.keyAt(p);
      if (key.name.equals(name)) return [2, key.hmac, key.aes];
    }
    return [0, current.hmac, current.aes];
  }

  private period(now = Date.now()): number {
    return Math.floor(now / this.periodMs);
  }

  private keyAt(period: number): TicketKey {
    let key = this.keys.get(period);
    if (key === undefined) {
      const bytes = Buffer.from(crypto.hkdfSync('sha256', this.seed, Buffer.alloc(0), `fulcrum session ticket key ${this.periodMs} ${period}`, 48));
      key = { name: bytes.subarray(0, 16), hmac: bytes.subarray(16, 32), aes: bytes.subarray(32, 48) };
      if (this.keys.size >= 6) this.keys.delete(this.keys.keys().next().value!);
      this.keys.set(period, key);
    }
    return key;
  }
}
