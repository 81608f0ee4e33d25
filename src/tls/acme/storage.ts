/**
 * Files of the ACME client under `acme_storage`:
 *
 *   accounts/<host>-<hash>/account.key       the ACME account key (0600)
 *   accounts/<host>-<hash>/account.json      directory URL, e-mail, account URL
 *   certificates/<name>/<ecdsa|rsa>/privkey.pem    0600
 *   certificates/<name>/<ecdsa|rsa>/fullchain.pem  leaf + intermediates
 *   http-01/<token>                          key authorizations being validated
 *   tls-alpn-01/<name>.pem                   challenge key + certificate being validated (0600)
 *
 * Every file is written to a temporary name and renamed, so a reader (a
 * worker's certificate watcher, a request for a token) never sees half a file.
 * The private key is renamed before the certificate; a watcher that reads
 * between the two sees a mismatch and looks again.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export function ensureDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Writes a file atomically (temporary file + rename) with `mode`. */
export function writeFileAtomic(file: string, data: string | Buffer, mode: number): void {
  ensureDir(path.dirname(file));
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  try {
    fs.writeFileSync(tmp, data, { mode });
    fs.chmodSync(tmp, mode); // the umask may have taken bits away
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

export function writePrivateFile(file: string, data: string | Buffer): void {
  writeFileAtomic(file, data, 0o600);
}

export function writePublicFile(file: string, data: string | Buffer): void {
  writeFileAtomic(file, data, 0o644);
}

export function removeFile(file: string): void {
  fs.rmSync(file, { force: true });
}

export function readIfExists(file: string): Buffer | undefined {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The account directory for a CA directory URL and e-mail (one account per pair). */
export function accountDir(storage: string, directoryUrl: string, email: string | undefined, eabKid: string | undefined): string {
  let host = 'ca';
  try {
    host = new URL(directoryUrl).host.replace(/[^A-Za-z0-9.-]/g, '_');
  } catch {
    // a bad URL fails later, with a clear message
  }
  const hash = crypto.createHash('sha256').update(`${directoryUrl}\n${email ?? ''}\n${eabKid ?? ''}`).digest('hex').slice(0, 12);
  return path.join(storage, 'accounts', `${host}-${hash}`);
}
