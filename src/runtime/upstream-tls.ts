/**
 * Compiles the proxy_ssl_* settings a location sees into the TLS settings of
 * its upstream group (src/upstream/tls-settings.ts). Idle connections are
 * pooled per upstream server, not per location: two locations that proxy to
 * one upstream with different proxy_ssl_* settings would share connections
 * made with the other's settings (a verified location reusing an unverified
 * connection). That is refused at config time, naming the conflict.
 */
import * as fs from 'node:fs';
import type { Settings } from '../config/schema.js';
import type { UpstreamGroup } from '../upstream/group.js';
import { upstreamTls, type UpstreamTls, type UpstreamTlsInput } from '../upstream/tls-settings.js';

export class UpstreamTlsCompiler {
  private readonly byGroup = new Map<UpstreamGroup, UpstreamTls>();
  private readonly files = new Map<string, Buffer | string>();

  constructor(private readonly resolvePath: (p: string) => string) {}

  /**
   * The settings for `group` as one location configures them, or an error
   * message. `host` is the host of the proxy_pass URL (the default
   * proxy_ssl_name).
   */
  compile(group: UpstreamGroup, host: string, get: <K extends keyof Settings>(key: K) => Settings[K]): UpstreamTls | string {
    const name = get('proxy_ssl_name') ?? host;
    if (name.includes('$')) return 'variables in proxy_ssl_name are not supported';
    let trustedCertificate: UpstreamTlsInput['trustedCertificate'];
    const caFile = get('proxy_ssl_trusted_certificate');
    if (caFile !== undefined) {
      const file = this.resolvePath(caFile);
      const pem = this.read(file, 'proxy_ssl_trusted_certificate');
      if (typeof pem === 'string') return pem;
      trustedCertificate = { file, pem };
    }
    const verify = get('proxy_ssl_verify') ?? false;
    // nginx: 'no proxy_ssl_trusted_certificate for proxy_ssl_verify'.
    if (verify && trustedCertificate === undefined) return 'no "proxy_ssl_trusted_certificate" for "proxy_ssl_verify"';
    let certificate: UpstreamTlsInput['certificate'];
    const certFile = get('proxy_ssl_certificate');
    const keyFile = get('proxy_ssl_certificate_key');
    if (certFile !== undefined) {
      if (keyFile === undefined) return `no "proxy_ssl_certificate_key" is defined for certificate "${certFile}"`;
      const certPath = this.resolvePath(certFile);
      const keyPath = this.resolvePath(keyFile);
      const cert = this.read(certPath, 'proxy_ssl_certificate');
      if (typeof cert === 'string') return cert;
      const key = this.read(keyPath, 'proxy_ssl_certificate_key');
      if (typeof key === 'string') return key;
      certificate = { certFile: certPath, keyFile: keyPath, cert, key };
    }
    const settings = upstreamTls({
      verify,
      verifyDepth: get('proxy_ssl_verify_depth') ?? 1,
      name,
      sendServerName: get('proxy_ssl_server_name') ?? false,
      sessionReuse: get('proxy_ssl_session_reuse') ?? true,
      // nginx 1.22's default; fulcrum's TLS stack has no SSLv3 and refuses TLSv1/1.1 at its default security level anyway.
      protocols: get('proxy_ssl_protocols') ?? ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'],
      ciphers: get('proxy_ssl_ciphers'),
      trustedCertificate,
      certificate,
    });
    const earlier = this.byGroup.get(group);
    if (earlier !== undefined && earlier.key !== settings.key) {
      return `upstream "${group.name}" is used with different proxy_ssl_* settings in different places; connections to it are pooled per server, so give each set of settings its own upstream block`;
    }
    if (earlier !== undefined) return earlier;
    this.byGroup.set(group, settings);
    return settings;
  }

  private read(file: string, directive: string): Buffer | string {
    const cached = this.files.get(file);
    if (cached !== undefined) return cached;
    let result: Buffer | string;
    try {
      result = fs.readFileSync(file);
      if (!result.includes('-----BEGIN ')) result = `${directive} "${file}" is not a PEM file`;
    } catch (err) {
      result = `cannot read ${directive} "${file}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
    }
    this.files.set(file, result);
    return result;
  }
}

/** The host of a proxy_pass URL's host[:port] (brackets of an IPv6 address removed). */
export function proxyPassHost(hostPort: string): string {
  if (hostPort.startsWith('[')) return hostPort.slice(1, hostPort.indexOf(']'));
  const colon = hostPort.lastIndexOf(':');
  return colon > 0 ? hostPort.slice(0, colon) : hostPort;
}
