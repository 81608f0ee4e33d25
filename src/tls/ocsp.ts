/**
 * OCSP stapling (`ssl_stapling on`): for a certificate that names an OCSP
 * responder (Authority Information Access) and comes with its issuer in the
 * chain, fulcrum fetches the responder's answer in the background, checks it
 * against the issuer, and hands it to clients that ask for the certificate
 * status during the handshake (tls.Server's 'OCSPRequest' event).
 *
 * Node has no OCSP client; the `openssl ocsp` command line builds the
 * request, sends it and verifies the response (as for the temporary
 * self-signed certificates, openssl is the one external tool). Responses are
 * refreshed halfway to their nextUpdate (at least every 12 hours), retried
 * with backoff when the responder fails, and dropped when they expire.
 *
 * Limits: a context holding two certificates (RSA and ECDSA side by side)
 * staples nothing, because Node does not say which of the two the handshake
 * picked; each worker fetches its own responses.
 */
import { execFile } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { log } from '../log/error-log.js';
import type { LoadedPair } from './certificate-files.js';

const MIN_REFRESH_MS = 60_000;
const MAX_REFRESH_MS = 12 * 3_600_000;
const RETRY_MIN_MS = 30_000;
const RETRY_MAX_MS = 3_600_000;

/** The OCSP responder URL a certificate names, if any. */
export function ocspUrl(cert: crypto.X509Certificate): string | undefined {
  const info = cert.infoAccess;
  if (info === undefined) return undefined;
  const m = /OCSP - URI:(\S+)/.exec(info);
  return m?.[1];
}

interface Entry {
  leaf: crypto.X509Certificate;
  issuer: crypto.X509Certificate;
  url: string;
  response: Buffer | undefined;
  expires: number;
  timer: NodeJS.Timeout | undefined;
  failures: number;
}

export class OcspStapler {
  private readonly entries = new Map<string, Entry>();
  /** Leaf DER hashes that may be stapled (certificates alone in their context). */
  private readonly single = new Set<string>();

  /**
   * Starts keeping a response for `pair` (idempotent). `alone`: the pair is
   * the only certificate of its context, so the response can be stapled.
   */
  track(pair: LoadedPair, alone: boolean): void {
    const key = derKey(pair.x509.raw);
    if (alone) this.single.add(key);
    if (this.entries.has(key)) return;
    const url = ocspUrl(pair.x509);
    const issuer = pair.chain[0];
    if (url === undefined || issuer === undefined) {
      log().info({ subject: pair.x509.subject.replace(/\n/g, ', '), reason: url === undefined ? 'the certificate names no OCSP responder' : 'the certificate file has no issuer certificate after the leaf' }, 'OCSP stapling not possible for this certificate');
      return;
    }
    const entry: Entry = { leaf: pair.x509, issuer, url, response: undefined, expires: 0, timer: undefined, failures: 0 };
    this.entries.set(key, entry);
    void this.refresh(entry);
  }

  /** The response to staple for the certificate in a handshake, if a fresh one is known. */
  responseFor(certDer: Buffer): Buffer | undefined {
    const key = derKey(certDer);
    if (!this.single.has(key)) return undefined;
    const entry = this.entries.get(key);
    if (entry?.response === undefined || entry.expires < Date.now()) return undefined;
    return entry.response;
  }

  /** Forgets every response and stops refreshing. */
  stop(): void {
    for (const e of this.entries.values()) clearTimeout(e.timer);
    this.entries.clear();
    this.single.clear();
  }

  private async refresh(entry: Entry): Promise<void> {
    if (Date.parse(entry.leaf.validTo) < Date.now()) {
      // Replaced long ago (renewals add entries): nothing will ask for it any more.
      this.forget(entry);
      return;
    }
    try {
      const { response, nextUpdate } = await fetchOcsp(entry.leaf, entry.issuer, entry.url);
      entry.response = response;
      entry.failures = 0;
      entry.expires = nextUpdate ?? Date.now() + MAX_REFRESH_MS;
      const untilNext = (nextUpdate ?? Date.now() + 2 * MAX_REFRESH_MS) - Date.now();
      this.schedule(entry, Math.min(MAX_REFRESH_MS, Math.max(MIN_REFRESH_MS, untilNext / 2)));
      log().info({ subject: entry.leaf.subject.replace(/\n/g, ', '), responder: entry.url, nextUpdate: nextUpdate === undefined ? undefined : new Date(nextUpdate).toISOString() }, 'OCSP response fetched for stapling');
    } catch (err) {
      entry.failures++;
      const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (entry.failures - 1));
      log().warn({ subject: entry.leaf.subject.replace(/\n/g, ', '), responder: entry.url, error: (err as Error).message, retryInMs: delay, stapling: entry.response !== undefined && entry.expires > Date.now() ? 'previous response' : 'none' }, 'OCSP fetch failed');
      this.schedule(entry, delay);
    }
  }

  private forget(entry: Entry): void {
    clearTimeout(entry.timer);
    const key = derKey(entry.leaf.raw);
    this.entries.delete(key);
    this.single.delete(key);
  }

  private schedule(entry: Entry, ms: number): void {
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => void this.refresh(entry), ms);
    entry.timer.unref();
  }
}

function derKey(der: Buffer): string {
  return crypto.createHash('sha256').update(der).digest('base64');
}

/** Asks the responder with `openssl ocsp`, verifies the answer against the issuer, and returns the DER response. */
export async function fetchOcsp(leaf: crypto.X509Certificate, issuer: crypto.X509Certificate, url: string): Promise<{ response: Buffer; nextUpdate: number | undefined }> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'fulcrum-ocsp-'));
  try {
    const leafFile = path.join(dir, 'leaf.pem');
    const issuerFile = path.join(dir, 'issuer.pem');
    const out = path.join(dir, 'response.der');
    await fs.promises.writeFile(leafFile, leaf.toString());
    await fs.promises.writeFile(issuerFile, issuer.toString());
    const text = await run('openssl', ['ocsp', '-issuer', issuerFile, '-cert', leafFile, '-url', url, '-no_nonce', '-VAfile', issuerFile, '-respout', out, '-timeout', '10']);
    const status = /leaf\.pem: (\w+)/.exec(text)?.[1];
    if (status !== 'good') throw new Error(status === undefined ? `no status in the OCSP answer: ${text.trim().slice(0, 200)}` : `the responder says the certificate is ${status}`);
    if (!/Response verify OK/.test(text)) throw new Error(`the OCSP response does not verify: ${text.trim().slice(0, 200)}`);
    const next = /Next Update: (.+)/.exec(text)?.[1];
    const nextUpdate = next === undefined ? undefined : Date.parse(next.trim());
    return { response: await fs.promises.readFile(out), nextUpdate: Number.isFinite(nextUpdate) ? nextUpdate : undefined };
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      const text = `${stdout}${stderr}`;
      if (err !== null) reject(new Error(`${cmd} ${args[0]}: ${text.trim().slice(0, 300) || err.message}`));
      else resolve(text);
    });
  });
}

export const ocspStapler = new OcspStapler();
