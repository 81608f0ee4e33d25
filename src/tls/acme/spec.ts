/**
 * What the ACME directives of a configuration ask for, decided at compile
 * time (no side effects: `fulcrum check` runs this too):
 *
 *  - for each TLS server with `acme on`: the names to certify, the CA, the
 *    account, the challenge types, the key types and where the files live
 *    (AcmeServerSpec);
 *  - which plain-HTTP servers receive the CA's HTTP-01 requests for those
 *    names (the server nginx's server_name rules would pick for the name on
 *    each plain listener): a token fulcrum has a file for is answered from
 *    fulcrum's token directory before their own locations and before a
 *    server-level `return`/`redirect_https`; any other request (a token of an
 *    external certbot in the seed's webroot) goes where it went before.
 */
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import * as path from 'node:path';
import type { HttpBlockConfig, ServerBlockConfig, Settings } from '../../config/schema.js';
import type { ModelPath } from '../../config/source-map.js';
import { ServerNameMatcher } from '../../router/server-names.js';
import { certificateNames } from '../self-signed.js';

export type ChallengeType = 'http-01' | 'tls-alpn-01';
export type AcmeKeyType = 'ecdsa' | 'rsa';

export const ACME_CHALLENGE_PREFIX = '/.well-known/acme-challenge/';

/** Directory URLs by short name (acme_directory letsencrypt). */
export const KNOWN_DIRECTORIES: Record<string, string> = {
  letsencrypt: 'https://acme-v02.api.letsencrypt.org/directory',
  letsencrypt_staging: 'https://acme-staging-v02.api.letsencrypt.org/directory',
  zerossl: 'https://acme.zerossl.com/v2/DV90',
  google: 'https://dv.acme-v02.api.pki.goog/directory',
  google_staging: 'https://dv.acme-v02.test-api.pki.goog/directory',
  buypass: 'https://api.buypass.com/acme/directory',
  buypass_staging: 'https://api.test4.buypass.no/acme/directory',
};

export const DEFAULT_RETRY_MIN_MS = 120_000;
export const DEFAULT_RETRY_MAX_MS = 12 * 3_600_000;

export interface AcmeServerSpec {
  /** Names on the certificate, the first one names the lineage (files) and is the subject. */
  names: readonly string[];
  /** Directory name under storage/certificates/. */
  lineage: string;
  directoryUrl: string;
  email: string | undefined;
  eab: { kid: string; hmacKey: string } | undefined;
  /** In order of preference; a failed order tries the next one. */
  challenges: readonly ChallengeType[];
  keyTypes: readonly AcmeKeyType[];
  /** Renew when this much validity remains; undefined: a third of the certificate's lifetime. */
  renewBeforeMs: number | undefined;
  retryMinMs: number;
  retryMaxMs: number;
  /** Absolute storage directory (accounts, certificates, challenge files). */
  storage: string;
  /** A PEM file of extra roots to trust for the directory's HTTPS (a private CA). */
  caRoot: string | undefined;
}

/** Where the certificate of one lineage and key type lives. */
export function certificateFiles(spec: Pick<AcmeServerSpec, 'storage' | 'lineage'>, keyType: AcmeKeyType): { dir: string; cert: string; key: string } {
  const dir = path.join(spec.storage, 'certificates', spec.lineage, keyType);
  return { dir, cert: path.join(dir, 'fullchain.pem'), key: path.join(dir, 'privkey.pem') };
}

export function http01Dir(storage: string): string {
  return path.join(storage, 'http-01');
}

export function tlsAlpn01Dir(storage: string): string {
  return path.join(storage, 'tls-alpn-01');
}

/** File name of a TLS-ALPN-01 challenge certificate for `name`. */
export function tlsAlpn01File(storage: string, name: string): string {
  return path.join(tlsAlpn01Dir(storage), `${safeFileName(name)}.pem`);
}

export function safeFileName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9.-]/g, '_');
}

export interface PlanReporter {
  error(p: ModelPath, message: string): void;
  warn(p: ModelPath, message: string): void;
  resolvePath(p: string): string;
}

/** The ACME part of a compiled configuration. */
export class AcmePlan {
  private readonly specs = new Map<ServerBlockConfig, AcmeServerSpec>();
  private readonly challengeServers = new Map<ServerBlockConfig, string>();

  constructor(http: HttpBlockConfig, r: PlanReporter) {
    const lineages = new Map<string, { spec: AcmeServerSpec; index: number }>();
    http.servers.forEach((sc, i) => {
      if (sc.acme !== true) return;
      const p: ModelPath = ['http', 'servers', i];
      if (!sc.listen.some((l) => l.ssl)) {
        r.warn([...p, 'acme'], '"acme on" in a server without "listen ... ssl": the certificate is obtained but no listener of this server uses it');
      }
      const spec = this.buildSpec(sc, http, p, r);
      if (spec === undefined) return;
      const same = lineages.get(spec.lineage);
      if (same !== undefined) {
        if (same.spec.names.join(' ') !== spec.names.join(' ') || same.spec.directoryUrl !== spec.directoryUrl || same.spec.keyTypes.join() !== spec.keyTypes.join()) {
          r.error([...p, 'acme'], `server "${spec.names[0]}" uses ACME with other names, key types or CA than the server at index ${same.index} with the same first name: give them the same settings or a different first name`);
          return;
        }
      } else {
        lineages.set(spec.lineage, { spec, index: i });
      }
      this.specs.set(sc, spec);
    });
    if (this.specs.size > 0) this.planHttp01(http, r);
  }

  /** The ACME spec of a TLS server with `acme on`. */
  specFor(sc: ServerBlockConfig): AcmeServerSpec | undefined {
    return this.specs.get(sc);
  }

  /** The HTTP-01 token directory when this plain-HTTP server answers the CA for some ACME name. */
  challengeDirFor(sc: ServerBlockConfig): string | undefined {
    return this.challengeServers.get(sc);
  }

  get enabled(): boolean {
    return this.specs.size > 0;
  }

  private buildSpec(sc: ServerBlockConfig, http: HttpBlockConfig, p: ModelPath, r: PlanReporter): AcmeServerSpec | undefined {
    const get = <K extends keyof Settings>(key: K): Settings[K] => sc[key] ?? http[key];
    const names: string[] = [];
    for (const name of certificateNames(sc.server_name)) {
      if (name.includes('*')) {
        r.warn([...p, 'server_name'], `"${name}": wildcard names need the DNS-01 challenge, which fulcrum does not do; it is left off the ACME certificate`);
        continue;
      }
      if (net.isIP(name) === 0 && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(name)) {
        r.warn([...p, 'server_name'], `"${name}" is not a host name a CA can validate; it is left off the ACME certificate`);
        continue;
      }
      names.push(name);
    }
    if (names.length === 0) {
      r.error([...p, 'acme'], '"acme on" needs a server_name with at least one host name (not a wildcard or regular expression)');
      return undefined;
    }
    const directoryText = get('acme_directory') ?? 'letsencrypt';
    const directoryUrl = KNOWN_DIRECTORIES[directoryText] ?? directoryText;
    if (!/^https?:\/\//.test(directoryUrl)) {
      r.error([...p, 'acme_directory'], `acme_directory "${directoryText}" is not a URL or one of ${Object.keys(KNOWN_DIRECTORIES).join(', ')}`);
      return undefined;
    }
    const kid = get('acme_eab_kid');
    const hmacKey = get('acme_eab_hmac_key');
    if ((kid === undefined) !== (hmacKey === undefined)) {
      r.error([...p, kid === undefined ? 'acme_eab_hmac_key' : 'acme_eab_kid'], 'External Account Binding needs both acme_eab_kid and acme_eab_hmac_key');
      return undefined;
    }
    const challenges: ChallengeType[] = get('acme_challenge') ?? ['http-01', 'tls-alpn-01'];
    const retry = get('acme_retry');
    const retryMinMs = retry?.min ?? DEFAULT_RETRY_MIN_MS;
    const retryMaxMs = Math.max(retryMinMs, retry?.max ?? DEFAULT_RETRY_MAX_MS);
    const storage = r.resolvePath(http.acme_storage ?? 'acme');
    const caRoot = get('acme_ca_root');
    if (sc.ssl_certificate !== undefined) r.warn([...p, 'ssl_certificate'], 'ssl_certificate is not used in a server with "acme on": the certificates fulcrum obtains are served');
    return {
      names,
      lineage: lineageName(names[0]!),
      directoryUrl,
      email: get('acme_email'),
      eab: kid !== undefined && hmacKey !== undefined ? { kid, hmacKey } : undefined,
      challenges: [...new Set(challenges)],
      keyTypes: [...new Set<AcmeKeyType>(get('acme_key_type') ?? ['ecdsa'])],
      renewBeforeMs: get('acme_renew_before'),
      retryMinMs,
      retryMaxMs,
      storage,
      caRoot: caRoot === undefined ? undefined : r.resolvePath(caRoot),
    };
  }

  /**
   * For every name certified with HTTP-01: on each plain-HTTP listen
   * address, the server that nginx's rules pick for that Host answers the
   * challenge.
   */
  private planHttp01(http: HttpBlockConfig, r: PlanReporter): void {
    const byListen = new Map<string, { entries: { names: readonly string[]; server: ServerBlockConfig }[]; defaultServer: ServerBlockConfig | undefined }>();
    for (const sc of http.servers) {
      for (const l of sc.listen) {
        if (l.ssl) continue;
        const key = `${l.address}:${l.port}`;
        let g = byListen.get(key);
        if (g === undefined) byListen.set(key, (g = { entries: [], defaultServer: undefined }));
        if (!g.entries.some((e) => e.server === sc)) g.entries.push({ names: sc.server_name, server: sc });
        if (l.default_server && g.defaultServer === undefined) g.defaultServer = sc;
      }
    }
    const matchers = [...byListen.values()].map((g) => new ServerNameMatcher(g.entries, g.defaultServer ?? g.entries[0]!.server));
    for (const [sc, spec] of this.specs) {
      if (!spec.challenges.includes('http-01')) continue;
      if (matchers.length === 0) {
        const index = http.servers.indexOf(sc);
        r.warn(['http', 'servers', index, 'acme'], 'the HTTP-01 challenge needs a plain-HTTP server (listen 80) in this configuration: there is none, so only TLS-ALPN-01 can succeed');
        continue;
      }
      const dir = http01Dir(spec.storage);
      for (const name of spec.names) {
        for (const m of matchers) {
          const receiver = m.find(name);
          const existing = this.challengeServers.get(receiver);
          if (existing !== undefined && existing !== dir) {
            r.error(['http', 'acme_storage'], 'every ACME server must use the same acme_storage');
            continue;
          }
          this.challengeServers.set(receiver, dir);
        }
      }
    }
  }
}

/** A directory name for a certificate lineage: the first name, made safe for a file name. */
export function lineageName(first: string): string {
  const safe = safeFileName(first);
  return safe === first.toLowerCase() ? safe : `${safe}-${crypto.createHash('sha256').update(first).digest('hex').slice(0, 8)}`;
}
