/**
 * TLS handshakes for certificate tests: connect, record what the server
 * presented (certificate, chain verdict, protocol, cipher, ALPN, stapled OCSP
 * response) and close. Never throws: a refused handshake is `ok: false`.
 */
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';

export interface ProbeOptions extends tls.ConnectionOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 5 s. */
  timeoutMs?: number;
  /** Sends this after the handshake and collects the answer until the server closes. */
  send?: string;
  /** Asks for the certificate status (OCSP stapling); the answer is in `ocsp`. */
  requestOCSP?: boolean;
}

export interface Probe {
  ok: boolean;
  error?: string;
  /** Certificate verified against `ca` (and the name, unless checkServerIdentity is overridden). */
  authorized?: boolean;
  authorizationError?: string;
  fingerprint?: string;
  x509?: X509Certificate;
  /** `rsa`, `ec` ... of the leaf's public key. */
  keyType?: string;
  protocol?: string | null;
  cipher?: string;
  alpn?: string | false | null;
  ocsp?: Buffer | null;
  reused?: boolean;
  session?: Buffer;
  response?: string;
}

export function probe(port: number, opts: ProbeOptions = {}): Promise<Probe> {
  const { host = '127.0.0.1', timeoutMs = 5000, send, ...connect } = opts;
  return new Promise((resolve) => {
    let result: Probe | undefined;
    let ocsp: Buffer | null = null;
    let session: Buffer | undefined;
    const chunks: Buffer[] = [];
    const socket = tls.connect({ host, port, rejectUnauthorized: false, ...connect });
    const timer = setTimeout(() => socket.destroy(new Error('timed out')), timeoutMs);
    socket.on('OCSPResponse', (r: Buffer) => {
      ocsp = r;
    });
    socket.on('session', (s: Buffer) => {
      session = s;
    });
    socket.once('secureConnect', () => {
      const peer = socket.getPeerX509Certificate();
      result = {
        ok: true,
        authorized: socket.authorized,
        authorizationError: socket.authorizationError === null ? undefined : String(socket.authorizationError),
        fingerprint: peer?.fingerprint256,
        x509: peer,
        keyType: peer?.publicKey.asymmetricKeyType,
        protocol: socket.getProtocol(),
        cipher: socket.getCipher().name,
        alpn: socket.alpnProtocol,
        reused: socket.isSessionReused(),
      };
      if (send !== undefined) socket.write(send);
      else setTimeout(() => socket.destroy(), 50); // let a TLS 1.3 session ticket arrive
    });
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', (err: Error) => {
      if (result === undefined) result = { ok: false, error: err.message };
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const r = result ?? { ok: false, error: 'closed before the handshake' };
      resolve({ ...r, ocsp, session, response: Buffer.concat(chunks).toString() });
    });
  });
}

/** Whether a certificate is self-signed (issuer = subject). */
export function isSelfSigned(x: X509Certificate | undefined): boolean {
  return x !== undefined && x.issuer === x.subject && x.verify(x.publicKey);
}
