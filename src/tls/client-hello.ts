/**
 * Just enough of a TLS ClientHello parser to read what Node's SNICallback is
 * not told: the ALPN protocols, signature algorithms and cipher suites the
 * client offers. Listeners peek at the first record only when they need it:
 *
 *  - ACME TLS-ALPN-01 (RFC 8737): a client offering exactly "acme-tls/1" is
 *    a CA's validator and gets the challenge certificate;
 *  - a virtual server (reached by SNI) with both an RSA and an ECDSA
 *    certificate: Node applies only one certificate of an SNI context, so
 *    fulcrum picks the context whose certificate the client can verify.
 *
 * The bytes read are put back before the TLS stack sees the connection.
 */
import type * as net from 'node:net';

/** The largest TLS record (2^14 plus the allowed expansion); anything bigger is not a ClientHello we read. */
const MAX_RECORD = 16384 + 2048;
const PEEK_TIMEOUT_MS = 10_000;

export interface ClientHello {
  servername: string | undefined;
  alpn: string[];
  /** signature_algorithms (RFC 8446 4.2.3), empty when absent. */
  sigalgs: number[];
  cipherSuites: number[];
  /** supported_versions (TLS 1.3 clients), empty when absent. */
  versions: number[];
}

export type ClientHelloPeek = { state: 'need-more' } | { state: 'invalid' } | ({ state: 'ok'; bytes: number } & ClientHello);

/** Parses the first TLS record in `buf` as a ClientHello. */
export function parseClientHello(buf: Buffer): ClientHelloPeek {
  if (buf.length < 5) return buf.length > 0 && buf[0] !== 0x16 ? { state: 'invalid' } : { state: 'need-more' };
  if (buf[0] !== 0x16 || buf[1] !== 0x03) return { state: 'invalid' };
  const recordLength = buf.readUInt16BE(3);
  if (recordLength > MAX_RECORD || recordLength < 4) return { state: 'invalid' };
  if (buf.length < 5 + recordLength) return { state: 'need-more' };
  const end = 5 + recordLength;
  let pos = 5;
  if (buf[pos] !== 0x01) return { state: 'invalid' };
  const helloLength = buf.readUIntBE(pos + 1, 3);
  pos += 4;
  // A ClientHello split over several records (over 16 KiB) is rare; read what the first record holds.
  const helloEnd = Math.min(end, pos + helloLength);
  const hello: ClientHello = { servername: undefined, alpn: [], sigalgs: [], cipherSuites: [], versions: [] };
  try {
    pos += 2 + 32; // legacy_version, random
    pos += 1 + buf[pos]!; // session id
    const suitesLength = buf.readUInt16BE(pos);
    for (let i = pos + 2; i + 1 < pos + 2 + suitesLength && i + 1 < helloEnd; i += 2) hello.cipherSuites.push(buf.readUInt16BE(i));
    pos += 2 + suitesLength;
    pos += 1 + buf[pos]!; // compression methods
    if (pos + 2 > helloEnd) return { state: 'ok', bytes: end, ...hello };
    const extensionsEnd = Math.min(helloEnd, pos + 2 + buf.readUInt16BE(pos));
    pos += 2;
    while (pos + 4 <= extensionsEnd) {
      const type = buf.readUInt16BE(pos);
      const length = buf.readUInt16BE(pos + 2);
      const body = pos + 4;
      if (body + length > extensionsEnd) return { state: 'invalid' };
      if (type === 0x0000) hello.servername = readServerName(buf, body, body + length);
      else if (type === 0x0010) hello.alpn = readAlpn(buf, body, body + length);
      else if (type === 0x000d) hello.sigalgs = readU16List(buf, body + 2, Math.min(body + 2 + buf.readUInt16BE(body), body + length));
      else if (type === 0x002b) hello.versions = readU16List(buf, body + 1, Math.min(body + 1 + buf[body]!, body + length));
      pos = body + length;
    }
  } catch {
    return { state: 'invalid' };
  }
  return { state: 'ok', bytes: end, ...hello };
}

function readServerName(buf: Buffer, start: number, end: number): string | undefined {
  let pos = start + 2; // server_name_list length
  while (pos + 3 <= end) {
    const type = buf[pos]!;
    const length = buf.readUInt16BE(pos + 1);
    if (type === 0 && pos + 3 + length <= end) return buf.toString('latin1', pos + 3, pos + 3 + length).toLowerCase();
    pos += 3 + length;
  }
  return undefined;
}

function readAlpn(buf: Buffer, start: number, end: number): string[] {
  const out: string[] = [];
  let pos = start + 2; // protocol_name_list length
  while (pos < end) {
    const length = buf[pos]!;
    if (length === 0 || pos + 1 + length > end) break;
    out.push(buf.toString('latin1', pos + 1, pos + 1 + length));
    pos += 1 + length;
  }
  return out;
}

function readU16List(buf: Buffer, start: number, end: number): number[] {
  const out: number[] = [];
  for (let pos = start; pos + 1 < end; pos += 2) out.push(buf.readUInt16BE(pos));
  return out;
}

/** ECDSA signature schemes (TLS 1.3 names and the TLS 1.2 hash/signature pairs). */
const ECDSA_SIGALGS = new Set([0x0403, 0x0503, 0x0603, 0x0303, 0x0203]);
/** RSA signature schemes (PKCS#1 and PSS). */
const RSA_SIGALGS = new Set([0x0401, 0x0501, 0x0601, 0x0301, 0x0201, 0x0804, 0x0805, 0x0806, 0x0809, 0x080a, 0x080b]);
const TLS13_SUITES = new Set([0x1301, 0x1302, 0x1303, 0x1304, 0x1305]);

/** What the server would negotiate with: its TLS 1.2 suites in its order with their authentication, TLS 1.3, order preference. */
export interface ServerSuites {
  tls13: boolean;
  /** TLS 1.2 suites the server allows (IANA id -> 'ec' | 'rsa'), in the server's order. */
  suites: ReadonlyMap<number, 'ec' | 'rsa'>;
  preferServer: boolean;
}

/**
 * Which of an RSA and an ECDSA certificate OpenSSL would present to this
 * client if it had both, as OpenSSL decides it: in TLS 1.3 by the first
 * signature scheme in the client's list that fits a certificate; in TLS 1.2
 * by the suite chosen (the client's first suite the server allows, or the
 * server's first the client offers with ssl_prefer_server_ciphers), whose
 * authentication names the certificate.
 */
export function preferredKeyType(hello: ClientHello, server: ServerSuites): 'ec' | 'rsa' {
  const sigFits = (type: 'ec' | 'rsa'): boolean => hello.sigalgs.length === 0 || hello.sigalgs.some((a) => (type === 'ec' ? ECDSA_SIGALGS : RSA_SIGALGS).has(a));
  const tls13 = server.tls13 && hello.versions.includes(0x0304) && hello.cipherSuites.some((s) => TLS13_SUITES.has(s));
  if (tls13) {
    for (const a of hello.sigalgs) {
      if (ECDSA_SIGALGS.has(a)) return 'ec';
      if (RSA_SIGALGS.has(a)) return 'rsa';
    }
    return 'ec';
  }
  if (server.preferServer) {
    const offered = new Set(hello.cipherSuites);
    for (const [id, type] of server.suites) if (offered.has(id) && sigFits(type)) return type;
  } else {
    for (const id of hello.cipherSuites) {
      const type = server.suites.get(id);
      if (type !== undefined && sigFits(type)) return type;
    }
  }
  return 'ec';
}

/**
 * Reads the start of a connection until the ClientHello's first record is
 * complete (or is not a ClientHello), puts the bytes back and calls `next`
 * with what was parsed (undefined when it was not a ClientHello).
 */
export function peekClientHello(socket: net.Socket, next: (hello: ClientHello | undefined) => void): void {
  const chunks: Buffer[] = [];
  let length = 0;
  const fail = (): void => {
    clearTimeout(timer);
    socket.destroy();
  };
  const timer = setTimeout(fail, PEEK_TIMEOUT_MS);
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk);
    length += chunk.length;
    const buf = chunks.length === 1 ? chunk : Buffer.concat(chunks, length);
    const hello = parseClientHello(buf);
    if (hello.state === 'need-more' && length < MAX_RECORD + 5) return;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('error', fail);
    socket.off('end', fail);
    socket.on('error', () => undefined);
    socket.pause();
    socket.unshift(buf);
    next(hello.state === 'ok' ? hello : undefined);
  };
  socket.on('data', onData);
  socket.on('error', fail);
  socket.once('end', fail);
}
