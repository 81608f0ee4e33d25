/** nginx's $ssl_* variables (ngx_http_ssl_module), read from the client's TLS connection; '' on plain HTTP. */
import * as ssl from '../tls/client-verify.js';
import type { TLSSocket } from 'node:tls';
import type { VariableContext } from './context.js';

/**
 * The connection's socket when the request's server asked for a client
 * certificate. A listener asks on behalf of any of its servers that does; a
 * server that does not (nginx would not have asked) reports none.
 */
const client = (c: VariableContext): TLSSocket | undefined => (c.clientCertificateRequested === true ? c.tlsSocket : undefined);

export const SSL_VARIABLES: Record<string, (c: VariableContext) => string> = {
  ssl_protocol: (c) => ssl.sslProtocol(c.tlsSocket),
  ssl_cipher: (c) => ssl.sslCipher(c.tlsSocket),
  ssl_server_name: (c) => ssl.sslServerName(c.tlsSocket),
  ssl_session_reused: (c) => ssl.sslSessionReused(c.tlsSocket),
  ssl_client_verify: (c) => (c.tlsSocket === undefined ? '' : c.clientCertificateRequested === true ? ssl.sslClientVerify(c.tlsSocket) : 'NONE'),
  ssl_client_s_dn: (c) => ssl.sslClientDn(client(c), 'subject'),
  ssl_client_i_dn: (c) => ssl.sslClientDn(client(c), 'issuer'),
  ssl_client_serial: (c) => ssl.sslClientSerial(client(c)),
  ssl_client_fingerprint: (c) => ssl.sslClientFingerprint(client(c)),
  ssl_client_escaped_cert: (c) => ssl.sslClientEscapedCert(client(c)),
  ssl_client_cert: (c) => ssl.sslClientCert(client(c)),
};
