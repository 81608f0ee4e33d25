/**
 * The certificates of one TLS listener: a secure context per virtual server,
 * chosen by SNI with nginx's server_name rules, and a default (the default
 * server's) for clients without SNI or with an unknown name.
 */
import * as fs from 'node:fs';
import * as tls from 'node:tls';
import { ServerNameMatcher } from '../router/server-names.js';
import type { TlsServerConfig } from '../runtime/table.js';
import { log } from '../log/error-log.js';
import { secureContextOptions, type CertificatePair } from './context.js';
import { selfSignedCertificate } from './self-signed.js';

export class ListenerCertificates {
  private matcher: ServerNameMatcher<tls.SecureContext>;
  /** Options of the default server's context, for clients that send no SNI (tls.Server#setSecureContext). */
  defaultOptions: tls.SecureContextOptions;

  constructor(configs: readonly TlsServerConfig[]) {
    const built = buildContexts(configs);
    this.matcher = built.matcher;
    this.defaultOptions = built.defaultOptions;
  }

  /** Builds every context for a reload (throwing, with nothing changed, if a certificate is invalid) and returns the switch. */
  prepare(configs: readonly TlsServerConfig[]): () => void {
    const built = buildContexts(configs);
    return () => {
      this.matcher = built.matcher;
      this.defaultOptions = built.defaultOptions;
    };
  }

  readonly sniCallback = (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void): void => {
    cb(null, this.matcher.find(servername.toLowerCase()).server);
  };
}

function buildContexts(configs: readonly TlsServerConfig[]): { matcher: ServerNameMatcher<tls.SecureContext>; defaultOptions: tls.SecureContextOptions } {
  const options = configs.map((c) => secureContextOptions(c, loadPairs(c)));
  const entries = configs.map((c, i) => ({ names: c.names, server: tls.createSecureContext(options[i]) }));
  const defaultIndex = Math.max(0, configs.findIndex((c) => c.isDefault));
  const defaultOptions = options[defaultIndex] ?? secureContextOptions(FALLBACK, [selfSignedCertificate('localhost')]);
  const defaultContext = entries[defaultIndex]?.server ?? tls.createSecureContext(defaultOptions);
  return { matcher: new ServerNameMatcher(entries, defaultContext), defaultOptions };
}

/** Reads a server's certificate files; a missing file gives a temporary self-signed certificate. */
export function loadPairs(config: TlsServerConfig): CertificatePair[] {
  const name = config.names[0] ?? '';
  if (config.certificates.length === 0) return [selfSignedCertificate(name)];
  const pairs: CertificatePair[] = [];
  for (const c of config.certificates) {
    if (!fs.existsSync(c.cert) || !fs.existsSync(c.key)) {
      log().warn({ cert: c.cert, key: c.key, server: name }, 'certificate files not found: serving a temporary self-signed certificate until they appear');
      pairs.push(selfSignedCertificate(name));
      continue;
    }
    pairs.push({ cert: fs.readFileSync(c.cert), key: fs.readFileSync(c.key) });
  }
  return pairs;
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
