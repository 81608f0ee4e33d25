/**
 * Client certificates (nginx's ssl_verify_client) and the $ssl_* variables.
 *
 * A listener with a server that verifies clients asks every client for a
 * certificate but never fails the handshake over it (requestCert,
 * rejectUnauthorized false); the CA list that verifies it is that of the
 * server SNI chose (`ca` in its secure context). The verdict is applied per
 * request, with the server the request was routed to, as nginx does in
 * ngx_http_process_request: a missing or unverifiable certificate is answered
 * with nginx's 400 pages ("No required SSL certificate was sent", "The SSL
 * certificate error") and the connection closed.
 *
 * What a connection's certificate says is computed once per connection and
 * kept (a WeakMap keyed by the socket); requests on plain connections and on
 * TLS servers without verification do none of this.
 */
import * as crypto from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { chainTooLong } from '../upstream/tls-settings.js';
import { NO_CA_ERRORS, verifyErrorText } from './verify-errors.js';

export type VerifyClientMode = 'on' | 'optional' | 'optional_no_ca';

export interface ClientVerify {
  readonly mode: VerifyClientMode;
  /** ssl_verify_depth (default 1). */
  readonly depth: number;
}

/** nginx's internal codes for the two refusals; both are sent as 400. */
export const enum ClientCertRefusal {
  None = 0,
  /** NGX_HTTPS_CERT_ERROR */
  CertError = 495,
  /** NGX_HTTPS_NO_CERT */
  NoCert = 496,
}

interface PeerInfo {
  cert: crypto.X509Certificate | undefined;
  /** undefined: verified; else the OpenSSL error code name (UNABLE_TO_GET_ISSUER_CERT_LOCALLY...) or text. */
  error: string | undefined;
  depthChecked: number;
}

const peers = new WeakMap<TLSSocket, PeerInfo>();

function peerInfo(socket: TLSSocket): PeerInfo {
  let info = peers.get(socket);
  if (info === undefined) {
    const cert = socket.getPeerX509Certificate();
    const error = cert === undefined ? undefined : socket.authorized ? undefined : String(socket.authorizationError ?? 'UNKNOWN');
    info = { cert, error, depthChecked: -1 };
    peers.set(socket, info);
  }
  return info;
}

/** Checks a request's connection against its server's ssl_verify_client; ClientCertRefusal.None lets it through. */
export function checkClientCertificate(socket: TLSSocket | undefined, verify: ClientVerify): ClientCertRefusal {
  if (socket === undefined) return ClientCertRefusal.None; // plain HTTP on a server that also listens with ssl
  const info = peerInfo(socket);
  if (info.cert === undefined) return verify.mode === 'on' ? ClientCertRefusal.NoCert : ClientCertRefusal.None;
  if (info.error === undefined && info.depthChecked !== verify.depth) {
    info.depthChecked = verify.depth;
    if (chainTooLong(socket, verify.depth) !== undefined) info.error = 'CERT_CHAIN_TOO_LONG';
  }
  if (info.error === undefined) return ClientCertRefusal.None;
  if (verify.mode === 'optional_no_ca' && NO_CA_ERRORS.has(info.error)) return ClientCertRefusal.None;
  return ClientCertRefusal.CertError;
}

/** nginx's pages for 495 and 496, sent with status 400. */
const PAGES: Record<number, Buffer> = {
  495: page('The SSL certificate error'),
  496: page('No required SSL certificate was sent'),
};

function page(text: string): Buffer {
  return Buffer.from(`<html>\r\n<head><title>400 ${text}</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<center>${text}</center>\r\n<hr><center>fulcrum</center>\r\n</body>\r\n</html>\r\n`, 'latin1');
}

export function refusalPage(refusal: ClientCertRefusal): Buffer {
  return PAGES[refusal]!;
}

export function refusalMessage(refusal: ClientCertRefusal, socket: TLSSocket | undefined): string {
  if (refusal === ClientCertRefusal.NoCert) return 'client sent no required SSL certificate';
  const error = socket === undefined ? undefined : peers.get(socket)?.error;
  return `client SSL certificate verify error: (${verifyErrorText(error)})`;
}

// ------------------------------------------------------------------ variables

/** $ssl_client_verify: SUCCESS, FAILED:reason or NONE. */
export function sslClientVerify(socket: TLSSocket | undefined): string {
  if (socket === undefined) return '';
  const info = peerInfo(socket);
  if (info.cert === undefined) return 'NONE';
  return info.error === undefined ? 'SUCCESS' : `FAILED:${verifyErrorText(info.error)}`;
}

/** $ssl_client_s_dn / $ssl_client_i_dn: RFC 2253, as nginx since 1.11.6 ("CN=client,O=Example"). */
export function sslClientDn(socket: TLSSocket | undefined, which: 'subject' | 'issuer'): string {
  const cert = socket === undefined ? undefined : peerInfo(socket).cert;
  if (cert === undefined) return '';
  return rfc2253(cert[which]);
}

/** Node's multi-line distinguished name ("C=US\nO=Example\nCN=client") in RFC 2253 order and escaping. */
export function rfc2253(multiline: string): string {
  return multiline
    .split('\n')
    .filter((l) => l !== '')
    .reverse()
    .map((rdn) => {
      const eq = rdn.indexOf('=');
      const value = rdn.slice(eq + 1).replace(/([,+"\\<>;])/g, '\\$1').replace(/^([ #])/, '\\$1').replace(/ $/, '\\ ');
      return `${rdn.slice(0, eq)}=${value}`;
    })
    .join(',');
}

export function sslClientSerial(socket: TLSSocket | undefined): string {
  const cert = socket === undefined ? undefined : peerInfo(socket).cert;
  return cert === undefined ? '' : cert.serialNumber.toUpperCase();
}

/** SHA-1 of the certificate, lower-case hex without separators, as nginx. */
export function sslClientFingerprint(socket: TLSSocket | undefined): string {
  const cert = socket === undefined ? undefined : peerInfo(socket).cert;
  return cert === undefined ? '' : cert.fingerprint.replace(/:/g, '').toLowerCase();
}

/** $ssl_client_escaped_cert: the PEM, URL-encoded. */
export function sslClientEscapedCert(socket: TLSSocket | undefined): string {
  const cert = socket === undefined ? undefined : peerInfo(socket).cert;
  return cert === undefined ? '' : encodeURIComponent(cert.toString());
}

/** $ssl_client_cert: nginx's deprecated form, the PEM with a tab before every line but the first. */
export function sslClientCert(socket: TLSSocket | undefined): string {
  const cert = socket === undefined ? undefined : peerInfo(socket).cert;
  return cert === undefined ? '' : cert.toString().trimEnd().replace(/\n/g, '\n\t');
}

export function sslProtocol(socket: TLSSocket | undefined): string {
  return socket?.getProtocol() ?? '';
}

export function sslCipher(socket: TLSSocket | undefined): string {
  return socket?.getCipher()?.name ?? '';
}

export function sslServerName(socket: TLSSocket | undefined): string {
  const name = (socket as (TLSSocket & { servername?: string | false }) | undefined)?.servername;
  return typeof name === 'string' ? name : '';
}

export function sslSessionReused(socket: TLSSocket | undefined): string {
  return socket === undefined ? '' : socket.isSessionReused() ? 'r' : '.';
}
