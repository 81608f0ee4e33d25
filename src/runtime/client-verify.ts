/** Compiles ssl_verify_client and its CA files (src/tls/client-verify.ts). */
import * as fs from 'node:fs';
import type { HttpBlockConfig, ServerBlockConfig } from '../config/schema.js';
import type { ClientVerify } from '../tls/client-verify.js';
import type { TlsServerConfig } from './table.js';

/** The request-time check of a server with an ssl listener; undefined when it does not verify clients. */
export function clientVerifyOf(server: ServerBlockConfig, http: HttpBlockConfig, error: (message: string) => void): ClientVerify | undefined {
  const mode = server.ssl_verify_client ?? http.ssl_verify_client ?? 'off';
  if (mode === 'off' || !server.listen.some((l) => l.ssl)) return undefined;
  const hasCa = (server.ssl_client_certificate ?? http.ssl_client_certificate ?? server.ssl_trusted_certificate ?? http.ssl_trusted_certificate) !== undefined;
  // nginx: "no ssl_client_certificate for ssl_verify_client"; optional_no_ca needs none.
  if (mode !== 'optional_no_ca' && !hasCa) error('no "ssl_client_certificate" for "ssl_verify_client"');
  return { mode, depth: server.ssl_verify_depth ?? http.ssl_verify_depth ?? 1 };
}

/** What the server's secure context needs: whether to ask for a certificate, and the CA files that verify it. */
export function clientCaOf(server: ServerBlockConfig, http: HttpBlockConfig, resolve: (file: string) => string, error: (message: string) => void): Pick<TlsServerConfig, 'verifyClient' | 'clientCaFiles'> {
  const mode = server.ssl_verify_client ?? http.ssl_verify_client ?? 'off';
  const files = [server.ssl_client_certificate ?? http.ssl_client_certificate, server.ssl_trusted_certificate ?? http.ssl_trusted_certificate];
  const clientCaFiles = files.filter((f): f is string => f !== undefined).map(resolve);
  // Like `nginx -t`: the listener would fail to start on a CA file it cannot read.
  for (const file of clientCaFiles) {
    try {
      if (!fs.readFileSync(file, 'latin1').includes('-----BEGIN CERTIFICATE-----')) error(`"${file}" (ssl_client_certificate / ssl_trusted_certificate) holds no PEM certificate`);
    } catch (err) {
      error(`cannot read "${file}" (ssl_client_certificate / ssl_trusted_certificate): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return { verifyClient: mode !== 'off', clientCaFiles };
}

/**
 * TLS session resumption is turned off on a listener where a server verifies
 * clients. Node picks the SNI server's context only after OpenSSL has
 * decided to resume, so a session (ID or ticket) made on one server would
 * resume on another and carry the first server's verdict on the client
 * certificate, under a CA the second does not trust. nginx separates them by
 * a session-ID context per server; fulcrum cannot, so it does not resume.
 */
export function withoutResumptionWhereClientsAreVerified(configs: TlsServerConfig[]): TlsServerConfig[] {
  if (!configs.some((c) => c.verifyClient === true)) return configs;
  return configs.map((c) => ({ ...c, sessionTickets: false, sessionCache: 'off' }));
}
