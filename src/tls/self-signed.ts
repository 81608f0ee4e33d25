/**
 * A temporary self-signed certificate, served for a name that has no usable
 * certificate yet (the file does not exist until certbot or ACME makes it),
 * so HTTPS answers instead of refusing. Node cannot sign X.509 certificates
 * itself; the `openssl` command line (present wherever nginx and certbot
 * are) does it once per name.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CertificatePair } from './context.js';

const cache = new Map<string, CertificatePair>();

export function selfSignedCertificate(name: string): CertificatePair {
  const commonName = name === '' || name.startsWith('~') || name === '_' ? 'localhost' : name.replace(/^\*?\./, 'wildcard.');
  const cached = cache.get(commonName);
  if (cached !== undefined) return cached;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fulcrum-selfsigned-'));
  try {
    const keyPath = path.join(dir, 'key.pem');
    const certPath = path.join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '30', '-subj', `/CN=${commonName}`, '-addext', `subjectAltName=DNS:${commonName}`, '-keyout', keyPath, '-out', certPath],
      { stdio: 'ignore' },
    );
    const pair = { cert: fs.readFileSync(certPath), key: fs.readFileSync(keyPath) };
    cache.set(commonName, pair);
    return pair;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
