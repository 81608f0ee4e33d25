/**
 * Answering ACME TLS-ALPN-01 challenges (RFC 8737) on TLS listeners.
 *
 * The CA connects to port 443 offering only the ALPN protocol "acme-tls/1"
 * and the name being validated as SNI, and expects a self-signed certificate
 * carrying the key authorization. The ACME client writes that certificate
 * (with its key) to `<acme_storage>/tls-alpn-01/<name>.pem`, so whichever
 * process accepts the connection (any worker) can answer it.
 *
 * Node's SNICallback is not told the client's ALPN list, so a listener that
 * serves TLS-ALPN-01 peeks at the ClientHello (client-hello.ts) and hands
 * validation connections to this responder, a separate tls.Server whose only
 * job is that handshake; every other connection goes to the listener's real
 * TLS server. Listeners without ACME TLS-ALPN-01 do not peek for it.
 */
import * as fs from 'node:fs';
import type * as net from 'node:net';
import * as tls from 'node:tls';
import { log } from '../../log/error-log.js';
import { tlsAlpn01File } from './spec.js';

export const ACME_TLS_ALPN = 'acme-tls/1';
const HANDSHAKE_TIMEOUT_MS = 10_000;

export class TlsAlpn01Responder {
  private readonly server: tls.Server;

  constructor(
    /** acme_storage directories to look for challenge certificates in. */
    public storages: readonly string[],
  ) {
    this.server = tls.createServer({
      minVersion: 'TLSv1.2',
      ALPNProtocols: [ACME_TLS_ALPN],
      SNICallback: (servername, cb) => {
        const context = this.contextFor(servername);
        if (context === undefined) cb(new Error(`no TLS-ALPN-01 challenge pending for "${servername}"`));
        else cb(null, context);
      },
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    });
    this.server.on('secureConnection', (socket: tls.TLSSocket) => {
      log().info({ name: socket.servername, remote: socket.remoteAddress }, 'acme TLS-ALPN-01 challenge answered');
      socket.on('error', () => undefined);
      socket.end();
    });
    this.server.on('tlsClientError', (_err, socket) => socket.destroy());
  }

  private contextFor(servername: string): tls.SecureContext | undefined {
    for (const storage of this.storages) {
      let pem: Buffer;
      try {
        pem = fs.readFileSync(tlsAlpn01File(storage, servername));
      } catch {
        continue;
      }
      try {
        return tls.createSecureContext({ cert: pem, key: pem, minVersion: 'TLSv1.2' });
      } catch (err) {
        log().error({ name: servername, error: (err as Error).message }, 'acme TLS-ALPN-01 challenge certificate unusable');
      }
    }
    return undefined;
  }

  /** Completes a validation handshake (the listener peeked and saw ALPN "acme-tls/1" only). */
  handle(socket: net.Socket): void {
    this.server.emit('connection', socket);
  }
}
