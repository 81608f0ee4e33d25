/**
 * Test certificates made with the `openssl` CLI: self-signed server
 * certificates, and a test CA that signs leaf certificates. Each call writes
 * its own small OpenSSL config, so the result does not depend on the system's
 * openssl.cnf.
 *
 * Files are named after `fileBase` (default: the common name), so making a
 * certificate again with the same name overwrites it in place, as a renewal does.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';

export interface CertOptions {
  /** Default `localhost`. */
  commonName?: string;
  /**
   * Subject alternative names: `DNS:x` / `IP:y`, or bare names and addresses
   * (typed automatically). Default: the common name and 127.0.0.1.
   */
  altNames?: string[];
  /** Default `ec` (P-256, fast to generate); `rsa` is 2048-bit. */
  keyType?: 'rsa' | 'ec';
  /** Validity in days (at least 1), default 30. */
  days?: number;
  /** File name stem: `<fileBase>.cert.pem` and `<fileBase>.key.pem`. Default: the common name. */
  fileBase?: string;
}

export interface CertFiles {
  certPath: string;
  keyPath: string;
  /** PEM text. */
  cert: string;
  key: string;
}

const DEFAULT_DAYS = 30;

/** A self-signed server certificate; a client trusts it by passing `cert` as `ca`. */
export function makeSelfSignedCert(dir: string, opts: CertOptions = {}): CertFiles {
  const commonName = opts.commonName ?? 'localhost';
  const paths = certPaths(dir, opts.fileBase ?? commonName);
  const config = writeConfig(paths.configPath, commonName, leafExtensions(commonName, opts.altNames));
  openssl('req', '-x509', ...newKeyArgs(opts.keyType), '-nodes', '-keyout', paths.keyPath, '-out', paths.certPath,
    '-days', String(opts.days ?? DEFAULT_DAYS), '-config', config, '-extensions', 'ext');
  return readCertFiles(paths);
}

/** A certificate authority for tests (`ca.cert.pem`, `ca.key.pem` unless `fileBase` says otherwise). */
export function makeCA(dir: string, opts: Pick<CertOptions, 'commonName' | 'keyType' | 'days' | 'fileBase'> = {}): CertFiles {
  const commonName = opts.commonName ?? 'Fulcrum Test CA';
  const paths = certPaths(dir, opts.fileBase ?? 'ca');
  const config = writeConfig(paths.configPath, commonName, [
    'basicConstraints = critical, CA:TRUE',
    'keyUsage = critical, keyCertSign, cRLSign',
    'subjectKeyIdentifier = hash',
  ]);
  openssl('req', '-x509', ...newKeyArgs(opts.keyType), '-nodes', '-keyout', paths.keyPath, '-out', paths.certPath,
    '-days', String(opts.days ?? DEFAULT_DAYS), '-config', config, '-extensions', 'ext');
  return readCertFiles(paths);
}

/** A leaf certificate signed by `ca`; a client trusts it by passing `ca.cert` as `ca`. */
export function signCert(ca: CertFiles, dir: string, opts: CertOptions = {}): CertFiles {
  const commonName = opts.commonName ?? 'localhost';
  const paths = certPaths(dir, opts.fileBase ?? commonName);
  const config = writeConfig(paths.configPath, commonName, [
    ...leafExtensions(commonName, opts.altNames),
    'authorityKeyIdentifier = keyid',
  ]);
  const csrPath = join(dir, `${opts.fileBase ?? commonName}.csr.pem`);
  openssl('req', '-new', ...newKeyArgs(opts.keyType), '-nodes', '-keyout', paths.keyPath, '-out', csrPath, '-config', config);
  // A random serial: certificates from one CA must not share one, and a serial file would be shared state.
  openssl('x509', '-req', '-in', csrPath, '-CA', ca.certPath, '-CAkey', ca.keyPath,
    '-set_serial', `0x${randomBytes(16).toString('hex')}`, '-days', String(opts.days ?? DEFAULT_DAYS),
    '-extfile', config, '-extensions', 'ext', '-out', paths.certPath);
  return readCertFiles(paths);
}

interface CertPaths {
  certPath: string;
  keyPath: string;
  configPath: string;
}

function certPaths(dir: string, fileBase: string): CertPaths {
  const stem = join(dir, fileBase.replace(/[^\w.-]/g, '_'));
  return { certPath: `${stem}.cert.pem`, keyPath: `${stem}.key.pem`, configPath: `${stem}.openssl.cnf` };
}

function readCertFiles(paths: CertPaths): CertFiles {
  return {
    certPath: paths.certPath,
    keyPath: paths.keyPath,
    cert: readFileSync(paths.certPath, 'utf8'),
    key: readFileSync(paths.keyPath, 'utf8'),
  };
}

function leafExtensions(commonName: string, altNames: string[] | undefined): string[] {
  return [
    'basicConstraints = critical, CA:FALSE',
    `subjectAltName = ${subjectAltNames(altNames ?? [commonName, '127.0.0.1'])}`,
    'extendedKeyUsage = serverAuth, clientAuth',
    'subjectKeyIdentifier = hash',
  ];
}

function subjectAltNames(names: string[]): string {
  return names.map((name) => (/^(DNS|IP|email|URI):/.test(name) ? name : `${isIP(name) ? 'IP' : 'DNS'}:${name}`)).join(', ');
}

/** Writes an OpenSSL config with the subject and an `[ext]` section holding `extensions`. */
function writeConfig(path: string, commonName: string, extensions: string[]): string {
  const text = [
    '[req]',
    'distinguished_name = dn',
    'prompt = no',
    '[dn]',
    `CN = ${commonName}`,
    '[ext]',
    ...extensions,
    '',
  ].join('\n');
  writeFileSync(path, text);
  return path;
}

function newKeyArgs(keyType: CertOptions['keyType']): string[] {
  return keyType === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
}

function openssl(...args: string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim() || (err as Error).message}`);
  }
}
