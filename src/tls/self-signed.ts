/**
 * A temporary self-signed certificate, served for a name that has no usable
 * certificate yet (the file does not exist until certbot or ACME makes it),
 * so HTTPS answers instead of refusing. Node cannot sign X.509 certificates
 * itself; the `openssl` command line (present wherever nginx and certbot
 * are) does it once per set of names, and the result is cached.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CertificatePair } from './context.js';

const cache = new Map<string, CertificatePair>();

/** Names a certificate can carry: host names, `*.wildcards` and IP addresses (not regexes, `_` or ''). */
export function certificateNames(names: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of names) {
    if (raw === '' || raw === '_' || raw.startsWith('~') || raw.endsWith('.*')) continue;
    const name = raw.startsWith('.') ? raw.slice(1) : raw;
    if (!out.includes(name)) out.push(name);
    if (raw.startsWith('.') && !out.includes(`*${raw}`)) out.push(`*${raw}`);
  }
  return out;
}

/** A self-signed certificate for a server's names (`localhost` when it has none). */
export function selfSignedCertificate(...names: string[]): CertificatePair {
  const usable = certificateNames(names);
  if (usable.length === 0) usable.push('localhost');
  const cacheKey = usable.join(' ');
  const cached = cache.get(cacheKey);
  if (cached !== undefined) return cached;
  const commonName = usable[0]!.length > 64 ? 'fulcrum temporary certificate' : usable[0]!;
  const altNames = usable.map((n) => (net.isIP(n) !== 0 ? `IP:${n}` : `DNS:${n}`)).join(',');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fulcrum-selfsigned-'));
  try {
    const keyPath = path.join(dir, 'key.pem');
    const certPath = path.join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '30', '-subj', `/CN=${commonName}`, '-addext', `subjectAltName=${altNames}`, '-keyout', keyPath, '-out', certPath],
      { stdio: 'ignore' },
    );
    const pair = { cert: fs.readFileSync(certPath), key: fs.readFileSync(keyPath) };
    cache.set(cacheKey, pair);
    return pair;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
