import type { TLSSocket } from 'node:tls';
import type { RequestHead } from '../http/request-head.js';

/**
 * What nginx-style variables ($host, $uri, $remote_addr, $status...) are read
 * from. The proxy's per-request Exchange implements it; variables are compiled
 * once per config generation into getters over this interface, so expanding
 * `$host` at request time is one property read.
 */
export interface VariableContext {
  readonly request: RequestHead;
  /** Normalised, decoded path used for location matching ($uri). */
  readonly uri: string;
  /** Query string without '?', '' when none ($args). */
  readonly args: string;
  readonly remoteAddr: string;
  readonly remotePort: number;
  /** The connection's own address and port, before set_real_ip_from replaced them ($realip_remote_addr). */
  readonly realipRemoteAddr: string;
  readonly realipRemotePort: number;
  readonly serverAddr: string;
  readonly serverPort: number;
  /** 'http' or 'https'. */
  readonly scheme: string;
  /** The primary server_name of the matched server block. */
  readonly serverName: string;
  /** nginx's $host: request host without port, else the server name. */
  readonly host: string;
  /** Captures of the matched regex location or server_name ($1..$9). */
  readonly captures: readonly string[] | null;
  readonly requestId: string;
  readonly connectionId: number;
  readonly connectionRequests: number;
  /** Request start, ms since the epoch. */
  readonly startTime: number;
  /** Response status sent to the client (0 before the head is sent). */
  readonly status: number;
  readonly bytesSent: number;
  readonly bodyBytesSent: number;
  readonly requestLength: number;
  /** Upstream attempts, nginx style: "10.0.0.1:80, 10.0.0.2:80". */
  readonly upstreamAddr: string;
  readonly upstreamStatus: string;
  readonly upstreamResponseTime: string;
  readonly upstreamConnectTime: string;
  readonly upstreamHeaderTime: string;
  /** host[:port] of the proxy_pass target ($proxy_host). */
  readonly proxyHost: string;
  readonly proxyPort: string;
  /** The client's TLS connection ($ssl_* variables); undefined on plain HTTP. */
  readonly tlsSocket?: TLSSocket | undefined;
  /** The server asks for client certificates (ssl_verify_client): $ssl_client_* describe the one sent. */
  readonly clientCertificateRequested?: boolean;
  /** A response header being sent to the client ($sent_http_NAME). */
  sentHeader(lowerName: string): string | undefined;
  /** A header of the upstream response ($upstream_http_NAME). */
  upstreamHeader(lowerName: string): string | undefined;
  /** A variable `set` gave a value to in this request ('' when none did). */
  userVariable(name: string): string;
}
