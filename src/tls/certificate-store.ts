/**
 * The certificates of one TLS listener: a secure context per virtual server,
 * chosen by SNI with nginx's server_name rules, and a default (the default
 * server's) for clients without SNI or with an unknown name. A server may
 * have several certificates (RSA and ECDSA side by side).
 *
 * Node applies an SNI context by copying its *one* current certificate and
 * key onto the connection, over the listener's own context: certificates of
 * other key types in either context stay as they were. So a server reached
 * by SNI with RSA and ECDSA certificates would only ever show one of them,
 * and an RSA-only server beside an ECDSA default server would show
 * ECDSA-capable clients the default server's certificate. When the key types
 * on a listener are mixed, the listener therefore reads the ClientHello
 * first (client-hello.ts) and hands SNI connections to a second TLS server
 * whose own context has no certificate, with the SNI context holding exactly
 * the certificate the client can use; clients without SNI keep the default
 * server's full context, where OpenSSL chooses among its certificates.
 * Listeners with one key type (the usual case) do none of that.
 *
 * Certificate files are watched (certificate-files.ts): when a pair changes
 * on disk, the server's contexts are rebuilt and swapped in, so the next
 * handshake gets the new certificate; connections already open keep theirs.
 * A server whose files do not exist yet (certbot has not run, ACME has not
 * obtained them) is served a temporary self-signed certificate until they
 * appear.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { ServerNameMatcher } from '../router/server-names.js';
import type { TlsServerConfig } from '../runtime/table.js';
import { log } from '../log/error-log.js';
import { certificateWatcher, type LoadedPair, type PairHandle } from './certificate-files.js';
import { preferredKeyType, type ClientHello } from './client-hello.js';
import { secureContextOptions, serverSuites, type CertificatePair } from './context.js';
import { ocspStapler } from './ocsp.js';
import { selfSignedCertificate } from './self-signed.js';

export type KeyType = 'ec' | 'rsa';

type SniCallback = (err: Error | null, ctx?: tls.SecureContext) => void;

/** One virtual server's certificates on this listener. */
interface ServerSlot {
  readonly config: TlsServerConfig;
  readonly handles: PairHandle[];
  /** Every certificate of the server (the listener's own context when this is the default server). */
  options: tls.SecureContextOptions;
  context: tls.SecureContext;
  /** One context per key type of its certificates ('ec', 'rsa'). */
  byKeyType: Map<string, tls.SecureContext>;
  /** Serving the temporary self-signed certificate. */
  temporary: boolean;
}

interface Generation {
  slots: ServerSlot[];
  matcher: ServerNameMatcher<ServerSlot>;
  defaultSlot: ServerSlot;
}

export class ListenerCertificates {
  private current: Generation;
  /** The listener's own context changed (the default server's certificates, or a reload): tls.Server#setSecureContext. */
  onDefaultChange: (() => void) | undefined;
  /** Certificates of more than one key type on this listener (see the top of the file). */
  mixedKeyTypes = false;

  constructor(configs: readonly TlsServerConfig[]) {
    this.current = this.build(configs);
    this.mixedKeyTypes = mixed(this.current);
  }

  /** Options of the default server's context (clients without SNI). */
  get defaultOptions(): tls.SecureContextOptions {
    return this.current.defaultSlot.options;
  }

  /** The same settings without a certificate: the own context of the TLS server that serves SNI clients on mixed listeners. */
  get sniServerOptions(): tls.SecureContextOptions {
    const { cert: _cert, key: _key, ...rest } = this.current.defaultSlot.options;
    return rest;
  }

  /** Builds every context for a reload (throwing, with nothing changed, if a certificate is invalid) and returns the switch. */
  prepare(configs: readonly TlsServerConfig[]): () => void {
    const built = this.build(configs);
    return () => {
      const old = this.current;
      this.current = built;
      this.mixedKeyTypes = mixed(built);
      release(old);
    };
  }

  /**
   * SNI on a listener with one key type: the context of the server named;
   * the default server needs no switch (the listener's own context).
   */
  select(servername: string, cb: SniCallback): void {
    const slot = this.current.matcher.find(servername.toLowerCase());
    if (slot === this.current.defaultSlot) return cb(null);
    cb(null, slot.context);
  }

  /** SNI on a mixed listener: a context holding exactly one certificate, of `keyType` when the server has several. */
  selectOne(servername: string, keyType: KeyType | undefined, cb: SniCallback): void {
    const slot = this.current.matcher.find(servername.toLowerCase());
    const context = slot.byKeyType.get(keyType ?? 'ec') ?? slot.byKeyType.values().next().value;
    cb(null, context ?? slot.context);
  }

  /** The key type to give a client, when the server its ClientHello names has several. */
  keyTypeFor(hello: ClientHello): KeyType | undefined {
    const slot = this.current.matcher.find(hello.servername ?? '');
    if (slot.byKeyType.size < 2) return undefined;
    const c = slot.config;
    return preferredKeyType(hello, { tls13: c.protocols.includes('TLSv1.3'), suites: serverSuites(c.ciphers), preferServer: c.preferServerCiphers });
  }

  /** Stops watching this listener's files. */
  close(): void {
    release(this.current);
  }

  private build(configs: readonly TlsServerConfig[]): Generation {
    const slots: ServerSlot[] = [];
    try {
      for (const config of configs) slots.push(this.buildSlot(config, () => slots));
    } catch (err) {
      for (const slot of slots) for (const h of slot.handles) h.release();
      throw err;
    }
    const defaultIndex = Math.max(0, configs.findIndex((c) => c.isDefault));
    const defaultSlot = slots[defaultIndex] ?? fallbackSlot();
    warnUnusedSettings(slots, defaultSlot);
    return { slots, defaultSlot, matcher: new ServerNameMatcher(slots.map((s) => ({ names: s.config.names, server: s })), defaultSlot) };
  }

  private buildSlot(config: TlsServerConfig, generation: () => ServerSlot[]): ServerSlot {
    const handles: PairHandle[] = [];
    const slot: ServerSlot = { config, handles, options: {}, context: undefined as unknown as tls.SecureContext, byKeyType: new Map(), temporary: false };
    const name = config.names[0] ?? '';
    try {
      for (const c of config.certificates) {
        if (c.acme === true) makeDir(path.dirname(c.cert));
        const handle = certificateWatcher.acquire(c.cert, c.key, c.acme === true ? 'acme' : 'file', () => this.onPairChanged(slot, generation));
        handles.push(handle);
        const pair = handle.pair;
        if (pair.current !== undefined || pair.problem === '') continue;
        if (c.acme === true) {
          if (!pair.missing) log().error({ cert: c.cert, problem: pair.problem, server: name }, 'stored ACME certificate is unusable: it will be obtained again');
        } else if (pair.missing) {
          log().warn({ cert: c.cert, key: c.key, server: name }, 'certificate files not found: serving a temporary self-signed certificate until they appear');
        } else {
          throw new Error(`cannot load certificate "${c.cert}" with key "${c.key}": ${pair.problem}`);
        }
      }
      this.rebuild(slot, true);
    } catch (err) {
      for (const h of handles) h.release();
      throw err;
    }
    if (slot.temporary && config.acme !== undefined) {
      log().info({ server: name, names: config.acme.names }, 'no ACME certificate yet: serving a temporary self-signed certificate until it is obtained');
    }
    return slot;
  }

  /** Builds the slot's contexts from the pairs it has now. Throws on the first build; later keeps the old contexts on error. */
  private rebuild(slot: ServerSlot, first: boolean): boolean {
    const loaded = slot.handles.map((h) => h.pair.current).filter((p): p is LoadedPair => p !== undefined);
    const pairs: (CertificatePair & { keyType: string })[] = loaded.length > 0 ? loaded : [{ ...selfSignedCertificate(...slot.config.names), keyType: 'ec' }];
    let options: tls.SecureContextOptions;
    let context: tls.SecureContext;
    const byKeyType = new Map<string, tls.SecureContext>();
    try {
      options = secureContextOptions(slot.config, pairs);
      context = tls.createSecureContext(options);
      const types = new Map<string, CertificatePair[]>();
      for (const p of pairs) {
        const type = p.keyType === 'rsa-pss' ? 'rsa' : p.keyType;
        types.set(type, [...(types.get(type) ?? []), p]);
      }
      for (const [type, list] of types) byKeyType.set(type, types.size === 1 ? context : tls.createSecureContext(secureContextOptions(slot.config, list)));
    } catch (err) {
      if (first) throw err;
      log().error({ server: slot.config.names[0] ?? '', error: (err as Error).message }, 'certificate could not be used: keeping the previous certificate');
      return false;
    }
    slot.options = options;
    slot.context = context;
    slot.byKeyType = byKeyType;
    slot.temporary = loaded.length === 0;
    if (slot.config.stapling === true) for (const p of loaded) ocspStapler.track(p, loaded.length === 1);
    return true;
  }

  private onPairChanged(slot: ServerSlot, generation: () => ServerSlot[]): void {
    const wasTemporary = slot.temporary;
    if (!this.rebuild(slot, false)) return;
    if (wasTemporary && !slot.temporary) log().info({ server: slot.config.names[0] ?? '' }, 'temporary self-signed certificate replaced');
    // Only the generation in use changes what the listener does.
    if (this.current.slots !== generation()) return;
    this.mixedKeyTypes = mixed(this.current);
    if (slot === this.current.defaultSlot) this.onDefaultChange?.();
  }
}

/** The watcher polls when the directory cannot be made (the ACME client, elsewhere, may make it). */
function makeDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch {
    // reported by the ACME client if it cannot write there either
  }
}

/**
 * Node applies only the certificate of a context chosen by SNI: protocols,
 * ciphers and session settings are those of the listener's default server
 * (nginx has the same rule for several of them with name-based servers).
 */
function warnUnusedSettings(slots: readonly ServerSlot[], defaultSlot: ServerSlot): void {
  const d = defaultSlot.config;
  for (const s of slots) {
    if (s === defaultSlot) continue;
    const c = s.config;
    const differs: string[] = [];
    if (c.protocols.join() !== d.protocols.join()) differs.push('ssl_protocols');
    if (c.ciphers !== d.ciphers) differs.push('ssl_ciphers');
    if (c.preferServerCiphers !== d.preferServerCiphers) differs.push('ssl_prefer_server_ciphers');
    if (c.ecdhCurve !== d.ecdhCurve) differs.push('ssl_ecdh_curve');
    if (c.sessionTimeoutMs !== d.sessionTimeoutMs || c.sessionTickets !== d.sessionTickets || c.sessionCache !== d.sessionCache) differs.push('ssl_session_*');
    if (differs.length > 0) {
      log().warn({ server: c.names[0] ?? '', defaultServer: d.names[0] ?? '', settings: differs }, 'TLS settings of a name-based server differ from the default server of its listener: the default server\'s apply to every handshake on it');
    }
  }
}

function mixed(g: Generation): boolean {
  const types = new Set<string>();
  for (const slot of [...g.slots, g.defaultSlot]) for (const t of slot.byKeyType.keys()) types.add(t);
  return types.size > 1;
}

function release(generation: Generation): void {
  for (const slot of generation.slots) for (const h of slot.handles) h.release();
}

function fallbackSlot(): ServerSlot {
  const options = secureContextOptions(FALLBACK, [selfSignedCertificate('localhost')]);
  const context = tls.createSecureContext(options);
  return { config: FALLBACK, handles: [], options, context, byKeyType: new Map([['ec', context]]), temporary: true };
}

const FALLBACK: TlsServerConfig = {
  names: ['localhost'],
  certificates: [],
  protocols: ['TLSv1.2', 'TLSv1.3'],
  ciphers: undefined,
  preferServerCiphers: false,
  sessionCache: undefined,
  sessionTimeoutMs: 300_000,
  sessionTickets: false,
  ecdhCurve: undefined,
  isDefault: true,
};
