/**
 * One listening socket (address:port), plain or TLS. The socket outlives
 * config generations: a reload that keeps the address keeps the socket, so no
 * connection is refused during a reload; only its spec (virtual servers,
 * certificates) is swapped.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { ListenerSpec } from '../runtime/table.js';
import { TlsAlpn01Responder } from '../tls/acme/tls-alpn01.js';
import { ListenerCertificates, type KeyType } from '../tls/certificate-store.js';
import { peekClientHello } from '../tls/client-hello.js';
import { SessionCache, TicketKeys, sessionCacheCapacity } from '../tls/context.js';
import { ocspStapler } from '../tls/ocsp.js';
import type { ConnectionTracker } from './connection-tracker.js';
import { connectionCounts } from './connection-counts.js';
import { Http1Connection, type ClientSocket, type ListenerContext } from './http1-connection.js';
import { sharedReadsAvailable } from '../net/shared-read-buffer.js';
import { acceptOnBareHandles, type OnConnection } from '../net/tcp-stream.js';
import { Http2Connection } from './http2-session.js';

const TICKET_KEY_ROTATION_MS = 3_600_000;

/**
 * Set in a worker of several (src/lifecycle/connection-spread.ts): given a
 * connection just accepted, nothing read from it yet, returns true when it
 * has passed the connection to a sibling worker.
 */
export type HandOver = (listenerKey: string, clientHandle: unknown, connections: number, limit: number) => boolean;
let handOver: HandOver | undefined;

export function setHandOver(fn: HandOver | undefined): void {
  handOver = fn;
}

/**
 * ALPN: h2 when offered and enabled, else HTTP/1.x (curl --http1.0 offers
 * only "http/1.0" and gets it). A client that offers only protocols fulcrum
 * does not speak (spdy/3.1, an ACME validator's acme-tls/1 reaching the real
 * server) gets a fatal no_application_protocol alert, as from nginx; a
 * client that sends no ALPN at all is not asked.
 */
export function chooseAlpn(offered: readonly string[], http2: boolean): string | undefined {
  if (http2 && offered.includes('h2')) return 'h2';
  if (offered.includes('http/1.1')) return 'http/1.1';
  if (offered.includes('http/1.0')) return 'http/1.0';
  return undefined;
}

function onOcspRequest(cert: Buffer, _issuer: Buffer, cb: (err: Error | null, response: Buffer) => void): void {
  cb(null, ocspStapler.responseFor(cert) as Buffer);
}

/** The acme_storage directories of the servers on this listener that use TLS-ALPN-01. */
function tlsAlpnStorages(spec: ListenerSpec): string[] {
  const out = new Set<string>();
  for (const c of spec.tls) if (c.acme !== undefined && c.acme.challenges.includes('tls-alpn-01')) out.add(c.acme.storage);
  return [...out];
}

export class Listener implements ListenerContext {
  spec: ListenerSpec;
  readonly scheme: 'http' | 'https';
  /** The listening socket (a tls.Server for TLS listeners). */
  readonly server: net.Server;
  private readonly certificates: ListenerCertificates | undefined;
  /**
   * TLS listeners with certificates of several key types hand SNI
   * connections to this second TLS server (not listening; its own context has
   * no certificate): see src/tls/certificate-store.ts.
   */
  private readonly sniServer: tls.Server | undefined;
  private ticketKeys: TicketKeys | undefined;
  /** Set while some server on this listener obtains certificates with ACME TLS-ALPN-01. */
  private alpnResponder: TlsAlpn01Responder | undefined;
  /** Key type each peeked connection can use (remote address|port -> type), read by the SNI callback. */
  private readonly keyTypeHints = new Map<string, KeyType>();
  /** Accepts a TCP handle as if this listening socket had accepted it (set once listening). */
  private acceptHandle: ((clientHandle: unknown) => void) | undefined;

  constructor(
    spec: ListenerSpec,
    readonly tracker: ConnectionTracker,
  ) {
    this.spec = spec;
    this.scheme = spec.ssl ? 'https' : 'http';
    if (spec.ssl) {
      const certificates = new ListenerCertificates(spec.tls);
      this.certificates = certificates;
      const hints = this.keyTypeHints;
      const common = {
        ALPNCallback: ({ protocols }: { protocols: string[] }) => chooseAlpn(protocols, this.spec.http2),
        // Not during the handshake: a client that closes before finishing it (an aborted page load, a port
        // check) got no end from Node, so its socket and TLS state stayed until handshakeTimeout. nginx closes
        // at once. Half-open is allowed once the handshake is done (secureConnection below).
        allowHalfOpen: false,
        noDelay: true,
        handshakeTimeout: 10_000,
      };
      const tlsServer = tls.createServer({
        ...certificates.defaultOptions,
        SNICallback: (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => certificates.select(servername, cb),
        ...common,
      } as tls.TlsOptions);
      const sniServer = tls.createServer({
        ...certificates.sniServerOptions,
        // Node calls it as a method of the TLSSocket, which says which connection (and so which key type) it is.
        SNICallback(this: tls.TLSSocket | undefined, servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) {
          let keyType: KeyType | undefined;
          if (hints.size > 0 && this?.remotePort !== undefined) {
            const key = `${this.remoteAddress}|${this.remotePort}`;
            keyType = hints.get(key);
            hints.delete(key);
          }
          certificates.selectOne(servername, keyType, cb);
        },
        ...common,
      } as tls.TlsOptions);
      this.server = tlsServer;
      this.sniServer = sniServer;
      this.applyClientCertificateRequest(spec);
      // A certificate file of the default server changed on disk: new handshakes without SNI get it.
      certificates.onDefaultChange = () => this.applyDefaultContext();
      this.applySessionSettings(spec);
      tlsServer.on('secureConnection', (socket: tls.TLSSocket) => {
        // A request followed by the client's FIN still gets its response (Node reads the flag at the end of input).
        socket.allowHalfOpen = true;
        // A TLS error after the handshake (a refused renegotiation, a bad record) is emitted without closing the socket.
        socket.on('error', () => socket.destroy());
        this.accept(socket, socket.alpnProtocol === 'h2');
      });
      tlsServer.on('tlsClientError', (_err, socket) => socket.destroy());
      // One listener to observe: connections of the SNI server are reported by the listening one.
      sniServer.on('secureConnection', (socket: tls.TLSSocket) => tlsServer.emit('secureConnection', socket));
      sniServer.on('tlsClientError', (err, socket) => tlsServer.emit('tlsClientError', err, socket));
      this.routeConnections(tlsServer, sniServer);
      this.updateAlpnResponder(spec);
      this.updateStapling(spec);
      this.server.on('listening', () => this.interceptAccepts());
    } else {
      this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket, false));
      // Also when listening on an inherited descriptor (binary upgrade: runtime.ts).
      this.server.on('listening', () => {
        this.acceptBareHandles();
        this.interceptAccepts();
      });
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
      this.server.listen({ host: this.spec.host, port: this.spec.port, backlog: this.spec.backlog ?? 511, exclusive: false, ipv6Only: this.spec.ipv6Only }, () => {
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
        this.applyDefaultContext();
        this.applyClientCertificateRequest(spec);
        this.updateAlpnResponder(spec);
        this.updateStapling(spec);
      }
      this.spec = spec;
    };
  }

  /** The listener's own contexts: the default server's certificates, and the same settings without one for the SNI server. */
  private applyDefaultContext(): void {
    (this.server as tls.Server).setSecureContext(this.certificates!.defaultOptions);
    this.sniServer!.setSecureContext(this.certificates!.sniServerOptions);
    this.ticketKeys?.reapply();
  }

  /**
   * ssl_verify_client: when a server on this listener verifies clients, every
   * handshake asks for a certificate (Node sets the request per listener, not
   * per SNI context), and none fails over it: the server a request reaches
   * decides (src/tls/client-verify.ts). tls.Server reads both fields for each
   * new connection, so a reload applies to the next handshake.
   */
  private applyClientCertificateRequest(spec: ListenerSpec): void {
    const wanted = spec.tls.some((c) => c.verifyClient === true);
    for (const server of [this.server as tls.Server & { requestCert: boolean; rejectUnauthorized: boolean }, this.sniServer! as tls.Server & { requestCert: boolean; rejectUnauthorized: boolean }]) {
      server.requestCert = wanted;
      server.rejectUnauthorized = false;
    }
  }

  /** Session resumption as the listener's first server says (ssl_session_cache, ssl_session_tickets). */
  private applySessionSettings(spec: ListenerSpec): void {
    const first = spec.tls[0];
    if (first === undefined) return;
    const servers = [this.server as tls.Server, this.sniServer!];
    const cache = new SessionCache(sessionCacheCapacity(first.sessionCache), first.sessionTimeoutMs);
    for (const server of servers) cache.attach(server);
    if (first.sessionTickets) this.ticketKeys = new TicketKeys(servers, TICKET_KEY_ROTATION_MS);
  }

  /**
   * Reads the ClientHello before the TLS stack when this listener needs what
   * Node does not tell the SNI callback: ACME TLS-ALPN-01 validations (ALPN
   * "acme-tls/1" only) go to the challenge responder; with certificates of
   * several key types, SNI connections go to the SNI server with the key
   * type the client can use noted for its SNI callback. tls.Server accepts a
   * connection with the one 'connection' listener its constructor adds; it is
   * wrapped here, so a listener that needs neither pays one check per
   * connection.
   */
  private routeConnections(tlsServer: tls.Server, sniServer: tls.Server): void {
    const original = tlsServer.listeners('connection');
    if (original.length !== 1) return;
    const accept = original[0] as (socket: net.Socket) => void;
    tlsServer.removeListener('connection', accept);
    tlsServer.on('connection', (socket: net.Socket) => {
      const responder = this.alpnResponder;
      const certificates = this.certificates!;
      if (responder === undefined && !certificates.mixedKeyTypes) return accept.call(tlsServer, socket);
      peekClientHello(socket, (hello) => {
        if (hello !== undefined && responder !== undefined && hello.alpn.length === 1 && hello.alpn[0] === 'acme-tls/1') return responder.handle(socket);
        if (hello?.servername === undefined || !certificates.mixedKeyTypes) return accept.call(tlsServer, socket);
        const keyType = certificates.keyTypeFor(hello);
        if (keyType !== undefined) {
          const key = `${socket.remoteAddress}|${socket.remotePort}`;
          this.keyTypeHints.set(key, keyType);
          socket.once('close', () => this.keyTypeHints.delete(key));
        }
        sniServer.emit('connection', socket);
      });
    });
  }

  /** ssl_stapling: the OCSPRequest handler exists only while some server staples (Node calls it on every handshake that asks). */
  private updateStapling(spec: ListenerSpec): void {
    const wanted = spec.tls.some((c) => c.stapling === true);
    for (const server of [this.server as tls.Server, this.sniServer!]) {
      if (wanted === server.listenerCount('OCSPRequest') > 0) continue;
      if (wanted) server.on('OCSPRequest', onOcspRequest);
      else server.removeListener('OCSPRequest', onOcspRequest);
    }
  }

  private updateAlpnResponder(spec: ListenerSpec): void {
    const storages = tlsAlpnStorages(spec);
    if (storages.length === 0) this.alpnResponder = undefined;
    else if (this.alpnResponder === undefined) this.alpnResponder = new TlsAlpn01Responder(storages);
    else this.alpnResponder.storages = storages;
  }

  /**
   * Plain HTTP: accepted connections become bare TCP handles
   * (net/tcp-stream.ts) instead of net.Sockets, ~20-30 µs less CPU per
   * connection (docs/benchmarks.md, newconn). Where this Node lacks the
   * bindings, nothing changes.
   */
  private acceptBareHandles(): void {
    if (!sharedReadsAvailable) return;
    acceptOnBareHandles(this.server, (stream) => this.accept(stream, false));
  }

  /**
   * Wraps the listening handle's onconnection (after the bare-handle one, if
   * any): a worker of several may pass the connection to a sibling before
   * anything is read from it. One check per accepted connection otherwise.
   */
  private interceptAccepts(): void {
    const handle = (this.server as unknown as { _handle?: { onconnection?: OnConnection } | null })._handle;
    const inner = handle?.onconnection;
    if (handle === null || handle === undefined || typeof inner !== 'function') return;
    this.acceptHandle = (clientHandle) => inner.call(handle, 0, clientHandle);
    const listener = this;
    handle.onconnection = function (this: unknown, status: number, clientHandle: unknown): void {
      if (status === 0 && clientHandle !== undefined && handOver !== undefined && handOver(listener.key, clientHandle, listener.tracker.size, listener.tracker.maxConnections)) return;
      inner.call(this, status, clientHandle);
    };
  }

  /**
   * A connection another worker accepted on this address (connection-spread.ts);
   * false if this listener cannot take it. Also once this listener stopped
   * accepting (a stop began while the connection was on its way): it was
   * accepted, so it is served like the ones accepted here before the stop.
   */
  adopt(clientHandle: unknown): boolean {
    if (this.acceptHandle === undefined) return false;
    this.acceptHandle(clientHandle);
    return true;
  }

  private accept(socket: ClientSocket, h2: boolean): void {
    connectionCounts.accepted++;
    if (this.tracker.full) {
      // worker_connections reached: refuse cleanly rather than degrade everyone.
      socket.destroy();
      return;
    }
    if (h2) new Http2Connection(socket as net.Socket, this);
    else new Http1Connection(socket, this, performance.now());
  }

  close(): Promise<void> {
    this.ticketKeys?.stop();
    this.certificates?.close();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
