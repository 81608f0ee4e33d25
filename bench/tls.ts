/**
 * The certificate for the `https` scenario: one self-signed RSA-2048
 * certificate for 127.0.0.1 made with the openssl command line, given to every
 * proxy (nginx and fulcrum read the cert and key files, HAProxy one PEM with
 * both). Made once per session, only when a TLS scenario runs.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runBounded } from './processes.js';

export interface TlsFiles {
  cert: string;
  key: string;
  /** Certificate and key in one file (HAProxy's `crt`). */
  pem: string;
}

export async function makeTlsFiles(dir: string): Promise<TlsFiles> {
  const cert = join(dir, 'bench-cert.pem');
  const key = join(dir, 'bench-key.pem');
  const pem = join(dir, 'bench-cert-and-key.pem');
  const argv = ['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2'];
  argv.push('-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert);
  const r = await runBounded('openssl', argv, 30_000);
  if (r.timedOut || r.code !== 0) throw new Error(`could not make the https scenario's certificate with openssl: ${r.stderr}`);
  writeFileSync(pem, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'));
  return { cert, key, pem };
}
