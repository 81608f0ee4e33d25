/**
 * One listening socket (address:port), plain or TLS. The socket outlives
 * config generations: a reload that keeps the address keeps the socket, so no
 * connection is refused during a reload; only its spec (virtual servers,
 * certificates) is swapped.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { ListenerSpec } from '../runtime/table.js';
import { ListenerCertificates } from '../tls/certificate-store.js';
import { SessionCache, rotateTicketKeys, sessionCacheCapacity } from '../tls/context.js';
import type { ConnectionTracker } from './connection-tracker.js';
import { Http1Connection, type ListenerContext } from './http1-connection.js';
import { Http2Connection } from './http2-session.js';

const TICKET_KEY_ROTATION_MS = 3_600_000;

/**
 * ALPN: h2 when offered and enabled, else HTTP/1.x. Like nginx, a client
 * offering only protocols we do not name (curl --http1.0 offers "http/1.0")
 * is not refused: it gets HTTP/1.x.
 */
export function chooseAlpn(offered: readonly string[], http2: boolean): string | undefined {
  if (http2 && offered.includes('h2')) return 'h2';
  if (offered.includes('http/1.1')) return 'http/1.1';
  if (offered.includes('http/1.0')) return 'http/1.0';
  return offered[0];
}

export class Listener implements ListenerContext {
  spec: ListenerSpec;
  readonly scheme: 'http' | 'https';
  readonly server: net.Server;
  private readonly certificates: ListenerCertificates | undefined;
  private ticketTimer: NodeJS.Timeout | undefined;

  constructor(
    spec: ListenerSpec,
    readonly tracker: ConnectionTracker,
  ) {
    this.spec = spec;
    this.scheme = spec.ssl ? 'https' : 'http';
    if (spec.ssl) {
      this.certificates = new ListenerCertificates(spec.tls);
      const first = spec.tls[0];
      const tlsServer = tls.createServer({
        ...this.certificates.defaultOptions,
        SNICallback: this.certificates.sniCallback,
        ALPNCallback: ({ protocols }: { protocols: string[] }) => chooseAlpn(protocols, this.spec.http2),
        allowHalfOpen: true,
        noDelay: true,
        handshakeTimeout: 10_000,
      } as tls.TlsOptions);
      if (first !== undefined) {
        new SessionCache(sessionCacheCapacity(first.sessionCache), first.sessionTimeoutMs).attach(tlsServer);
        if (first.sessionTickets) this.ticketTimer = rotateTicketKeys(tlsServer, TICKET_KEY_ROTATION_MS);
      }
      tlsServer.on('secureConnection', (socket: tls.TLSSocket) => this.accept(socket, socket.alpnProtocol === 'h2'));
      tlsServer.on('tlsClientError', (_err, socket) => socket.destroy());
      this.server = tlsServer;
    } else {
      this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket, false));
    }
    this.server.on('error', () => undefined);
  }

  get key(): string {
    return this.spec.key;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen({ host: this.spec.host, port: this.spec.port, backlog: this.spec.backlog ?? 511, exclusive: false }, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
  }

  /** The port actually bound (differs from the spec for port 0). */
  get boundPort(): number {
    const addr = this.server.address();
    return typeof addr === 'object' && addr !== null ? addr.port : this.spec.port;
  }

  /**
   * Prepares a new generation's spec for the same address (reload): loads its
   * certificates now (throwing if they are unusable, with nothing changed)
   * and returns the function that switches to it.
   */
  prepare(spec: ListenerSpec): () => void {
    const certificates = spec.ssl ? this.certificates!.prepare(spec.tls) : undefined;
    return () => {
      if (certificates !== undefined) {
        certificates();
        (this.server as tls.Server).setSecureContext(this.certificates!.defaultOptions);
      }
      this.spec = spec;
    };
  }

  private accept(socket: net.Socket, h2: boolean): void {
    if (this.tracker.full) {
      // worker_connections reached: refuse cleanly rather than degrade everyone.
      socket.destroy();
      return;
    }
    if (h2) new Http2Connection(socket, this);
    else new Http1Connection(socket, this, performance.now());
  }

  close(): Promise<void> {
    if (this.ticketTimer !== undefined) clearInterval(this.ticketTimer);
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
