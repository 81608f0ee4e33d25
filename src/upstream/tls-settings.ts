/**
 * nginx's proxy_ssl_* settings for connections to an upstream group
 * (`proxy_pass https://`), compiled once per config generation, and the
 * check nginx makes after the handshake when proxy_ssl_verify is on.
 *
 * nginx's defaults: no verification, no SNI (proxy_ssl_server_name off),
 * sessions reused. The name checked (and sent, with proxy_ssl_server_name on)
 * is proxy_ssl_name, by default the host of the proxy_pass URL.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { verifyErrorText } from '../tls/verify-errors.js';
import type { ServerState } from './server-state.js';

export interface UpstreamTls {
  /** Equal keys mean interchangeable connections (one pool per server may hold them). */
  readonly key: string;
  readonly verify: boolean;
  readonly verifyDepth: number;
  /** proxy_ssl_name: the name the certificate must carry. */
  readonly name: string;
  /** SNI sent (proxy_ssl_server_name on, and the name is not an IP address), else undefined. */
  readonly serverName: string | undefined;
  readonly sessionReuse: boolean;
  /** Everything tls.connect needs beyond host, port, timeout and session. */
  readonly connectOptions: tls.ConnectionOptions;
}

export interface UpstreamTlsInput {
  verify: boolean;
  verifyDepth: number;
  name: string;
  sendServerName: boolean;
  sessionReuse: boolean;
  protocols: readonly string[];
  ciphers: string | undefined;
  trustedCertificate: { file: string; pem: Buffer } | undefined;
  certificate: { certFile: string; keyFile: string; cert: Buffer; key: Buffer } | undefined;
}

export function upstreamTls(input: UpstreamTlsInput): UpstreamTls {
  const order: tls.SecureVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
  const enabled = order.filter((v) => input.protocols.includes(v));
  const serverName = input.sendServerName && net.isIP(input.name) === 0 ? input.name : undefined;
  const connectOptions: tls.ConnectionOptions = {
    // Verification is done after the handshake (verifyUpstream), so that a failure is nginx's "upstream SSL certificate verify error", and against proxy_ssl_name even when no SNI is sent.
    rejectUnauthorized: false,
    ALPNProtocols: ['http/1.1'],
    servername: serverName,
    minVersion: enabled[0] ?? 'TLSv1.2',
    maxVersion: enabled[enabled.length - 1] ?? 'TLSv1.3',
    ciphers: input.ciphers,
    ca: input.trustedCertificate?.pem,
    cert: input.certificate?.cert,
    key: input.certificate?.key,
  };
  const key = JSON.stringify([
    input.verify,
    input.verifyDepth,
    input.name,
    serverName ?? '',
    input.sessionReuse,
    enabled,
    input.ciphers ?? '',
    input.trustedCertificate?.file ?? '',
    input.certificate?.certFile ?? '',
    input.certificate?.keyFile ?? '',
  ]);
  return { key, verify: input.verify, verifyDepth: input.verifyDepth, name: input.name, serverName, sessionReuse: input.sessionReuse, connectOptions };
}

/** What nginx would report after "upstream SSL certificate verify error", or undefined when the certificate passes. */
export function verifyUpstream(socket: tls.TLSSocket, settings: UpstreamTls): string | undefined {
  if (!socket.authorized) return `upstream SSL certificate verify error: (${verifyErrorText(socket.authorizationError)})`;
  // A resumed session carries the verdict of its first handshake, made with
  // these settings (sessions are kept only once verified, and dropped when
  // the settings change); Node does not show its certificate again.
  if (socket.isSessionReused()) return undefined;
  const depthProblem = chainTooLong(socket, settings.verifyDepth);
  if (depthProblem !== undefined) return `upstream SSL certificate verify error: (${depthProblem})`;
  const cert = socket.getPeerCertificate();
  const mismatch = tls.checkServerIdentity(settings.name, cert);
  if (mismatch !== undefined) return `upstream SSL certificate does not match "${settings.name}"`;
  return undefined;
}

/**
 * OpenSSL's verify depth as nginx sets it (proxy_ssl_verify_depth,
 * ssl_verify_depth, default 1): the number of CA certificates above the
 * peer's allowed in the verified chain.
 */
export function chainTooLong(socket: tls.TLSSocket, depth: number): string | undefined {
  let cert: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  let cas = -1;
  const seen = new Set<string>();
  while (cert !== undefined && cert.fingerprint256 !== undefined && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    cas++;
    cert = cert.issuerCertificate;
  }
  return cas > depth ? 'certificate chain too long' : undefined;
}

/**
 * Gives a server this generation's TLS settings. When they differ from the
 * ones its idle connections and stored session were made with (a reload
 * changed proxy_ssl_*), those are dropped: no request may go out over a
 * connection the new settings would not have made.
 */
export function useTlsSettings(server: ServerState, settings: UpstreamTls | undefined): void {
  const changed = (server.tls?.key ?? '') !== (settings?.key ?? '');
  server.tls = settings;
  if (!changed) return;
  server.tlsSession = undefined;
  server.pool?.closeAll();
}
