/**
 * fulcrum's ACME client: obtains and renews the certificates of `acme on`
 * servers, with acme-client (RFC 8555) against any directory URL.
 *
 * It runs once per installation: in the single process, or in the
 * supervisor when there are workers. It only writes files under
 * acme_storage; listeners (in whatever process) pick certificates up through
 * the certificate watcher, HTTP-01 tokens are files any worker serves, and
 * TLS-ALPN-01 challenge certificates are files any worker's listener reads.
 *
 * For each (certificate names, key type):
 *  - at start and after each success, the stored certificate is examined: an
 *    order is placed when there is none, it is unusable, its names or CA
 *    changed, or a third of its lifetime (or acme_renew_before) remains;
 *    otherwise a timer waits for that moment;
 *  - an order: account (created once, key 0600), new order, one challenge
 *    per authorization (the preferred type first; after a failure the next
 *    type is tried first), a fresh key and CSR, finalize, download, check
 *    that the chain matches the key, write key (0600) then certificate;
 *  - a failed order is logged and retried with exponential backoff
 *    (acme_retry, 2m doubling up to 12h by default); the files are untouched,
 *    so the old certificate (or the temporary self-signed one) keeps being
 *    served until a new one is in hand.
 *
 * Orders run one at a time. Log messages: "acme ordering certificate",
 * "acme certificate obtained", "acme order failed", "acme renewal scheduled".
 */
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { log } from '../../log/error-log.js';
import { checkPair, type LoadedPair } from '../certificate-files.js';
import { accountDir, readIfExists, removeFile, writePrivateFile, writePublicFile } from './storage.js';
import { certificateFiles, http01Dir, tlsAlpn01File, type AcmeKeyType, type AcmeServerSpec, type ChallengeType } from './spec.js';

type AcmeModule = typeof import('acme-client');
type AcmeClient = InstanceType<AcmeModule['Client']>;
type Authorization = Awaited<ReturnType<AcmeClient['getAuthorizations']>>[number];

/** setTimeout's limit is about 24.8 days; longer waits are re-evaluated. */
const MAX_TIMER_MS = 24 * 3_600_000;

let acmeModule: Promise<AcmeModule> | undefined;

/** acme-client is loaded only where ACME runs (it takes ~300 ms to import). */
function loadAcme(): Promise<AcmeModule> {
  acmeModule ??= import('acme-client').then((m) => {
    // Our own backoff retries failed orders; acme-client's per-request retry
    // (5 attempts, 5 s apart and growing) would hold an order for minutes.
    const defaults = m.axios.defaults as unknown as { acmeSettings: Record<string, number> };
    defaults.acmeSettings = { ...defaults.acmeSettings, retryMaxAttempts: 1, retryDefaultDelay: 1 };
    m.axios.defaults.timeout = 30_000;
    // acme-client's retry interceptor loses the network error once its retries
    // are spent (it reads `response.config` of a request that got no
    // response): keep the original error ("connect ECONNREFUSED ...").
    const handlers = (m.axios.interceptors.response as unknown as { handlers?: ({ rejected?: (e: unknown) => unknown } | null)[] }).handlers;
    for (const h of handlers ?? []) {
      const rejected = h?.rejected;
      if (h === null || rejected === undefined) continue;
      h.rejected = async (error: unknown) => {
        try {
          return await rejected(error);
        } catch (err) {
          if (err instanceof TypeError && (error as { response?: unknown }).response === undefined) throw error;
          throw err;
        }
      };
    }
    m.setLogger((message: string) => log().debug({ acme: message }, 'acme-client'));
    return m;
  });
  return acmeModule;
}

export interface StoredCertificate {
  pair: LoadedPair | undefined;
  problem: string;
  meta: { directoryUrl?: string; names?: string[] } | undefined;
}

/** Reads what is stored for a lineage and key type. */
export function readStored(spec: AcmeServerSpec, keyType: AcmeKeyType): StoredCertificate {
  const files = certificateFiles(spec, keyType);
  let meta: StoredCertificate['meta'];
  try {
    meta = JSON.parse(fs.readFileSync(path.join(files.dir, 'meta.json'), 'utf8')) as StoredCertificate['meta'];
  } catch {
    meta = undefined;
  }
  const cert = readIfExists(files.cert);
  const key = readIfExists(files.key);
  if (cert === undefined || key === undefined) return { pair: undefined, problem: 'no certificate yet', meta };
  try {
    return { pair: checkPair(cert, key), problem: '', meta };
  } catch (err) {
    return { pair: undefined, problem: `stored certificate unusable: ${(err as Error).message}`, meta };
  }
}

/** Names (DNS and IP) a certificate covers. */
export function certificateSubjectNames(pair: LoadedPair): Set<string> {
  const out = new Set<string>();
  for (const part of (pair.x509.subjectAltName ?? '').split(/,\s*/)) {
    const m = /^(DNS|IP Address):(.+)$/.exec(part.trim());
    if (m !== null) out.add(m[2]!.toLowerCase());
  }
  return out;
}

/** When to renew: the instant a third of the lifetime (or `renewBeforeMs`) remains. */
export function renewalTime(notBefore: Date, notAfter: Date, renewBeforeMs: number | undefined): number {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  const before = renewBeforeMs ?? lifetime / 3;
  return notAfter.getTime() - Math.min(before, lifetime);
}

/** Exponential backoff: min, 2*min, 4*min ... up to max, with +-10% jitter. */
export function backoffDelay(failures: number, minMs: number, maxMs: number, random = Math.random()): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.9 + 0.2 * random));
}

/** Why an order is due now, or when the next check is ('' = not due). */
export function dueReason(spec: AcmeServerSpec, stored: StoredCertificate, now: number): { reason: string; atMs: number } {
  if (stored.pair === undefined) return { reason: stored.problem, atMs: now };
  if (stored.meta?.directoryUrl !== undefined && stored.meta.directoryUrl !== spec.directoryUrl) return { reason: 'the CA (acme_directory) changed', atMs: now };
  const covered = certificateSubjectNames(stored.pair);
  if (spec.names.some((n) => !covered.has(n))) return { reason: 'server_name changed: names missing from the certificate', atMs: now };
  const at = renewalTime(stored.pair.notBefore, stored.pair.notAfter, spec.renewBeforeMs);
  if (at <= now) return { reason: 'renewal due', atMs: now };
  return { reason: '', atMs: at };
}

class CertificateJob {
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private cancelled = false;
  readonly files: ReturnType<typeof certificateFiles>;

  constructor(
    private readonly manager: AcmeManager,
    readonly spec: AcmeServerSpec,
    readonly keyType: AcmeKeyType,
  ) {
    this.files = certificateFiles(spec, keyType);
  }

  /** Examines the stored certificate and orders now or schedules the renewal. */
  evaluate(): void {
    if (this.cancelled) return;
    const stored = readStored(this.spec, this.keyType);
    const now = Date.now();
    const due = dueReason(this.spec, stored, now);
    if (due.reason !== '') {
      this.manager.enqueue(() => this.order(due.reason, stored.pair));
      return;
    }
    const wait = due.atMs - now;
    log().info({ names: this.spec.names, keyType: this.keyType, notAfter: stored.pair!.notAfter.toISOString(), renewAt: new Date(due.atMs).toISOString() }, 'acme renewal scheduled');
    this.setTimer(wait);
  }

  private setTimer(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.evaluate(), Math.min(Math.max(ms, 0), MAX_TIMER_MS));
    this.timer.unref();
  }

  cancel(): void {
    this.cancelled = true;
    clearTimeout(this.timer);
  }

  private async order(reason: string, previous: LoadedPair | undefined): Promise<void> {
    if (this.cancelled) return;
    // Another fulcrum on the same storage (the old process during a binary upgrade, another host on shared storage) is ordering it.
    let unlock: (() => void) | undefined;
    try {
      unlock = lockOrder(this.files.dir);
    } catch (err) {
      this.failed(err, previous);
      return;
    }
    if (unlock === undefined) {
      log().info({ names: this.spec.names, keyType: this.keyType }, 'acme order already in progress elsewhere: waiting for its result');
      this.setTimer(LOCKED_RETRY_MS);
      return;
    }
    try {
      await this.placeOrder(reason, previous);
    } finally {
      unlock();
    }
  }

  private async placeOrder(reason: string, previous: LoadedPair | undefined): Promise<void> {
    const started = performance.now();
    const challenges = rotate(this.spec.challenges, this.failures);
    log().info({ names: this.spec.names, keyType: this.keyType, directory: this.spec.directoryUrl, reason, challenges, attempt: this.failures + 1 }, 'acme ordering certificate');
    try {
      const pair = await this.manager.obtain(this.spec, this.keyType, challenges);
      if (this.cancelled) return;
      writePrivateFile(this.files.key, pair.key);
      writePublicFile(this.files.cert, pair.cert);
      writePublicFile(path.join(this.files.dir, 'meta.json'), JSON.stringify({ directoryUrl: this.spec.directoryUrl, names: this.spec.names, obtainedAt: new Date().toISOString() }) + '\n');
      this.failures = 0;
      log().info(
        { names: this.spec.names, keyType: this.keyType, fingerprint: pair.fingerprint, notBefore: pair.notBefore.toISOString(), notAfter: pair.notAfter.toISOString(), ms: Math.round(performance.now() - started), cert: this.files.cert },
        'acme certificate obtained',
      );
      this.evaluate();
    } catch (err) {
      this.failed(err, previous);
    }
  }

  /** A failed order: logged, retried with backoff; the files (and what is served) stay as they are. */
  private failed(err: unknown, previous: LoadedPair | undefined): void {
    if (this.cancelled) return;
    this.failures++;
    const delay = backoffDelay(this.failures, this.spec.retryMinMs, this.spec.retryMaxMs);
    log().warn(
      {
        names: this.spec.names,
        keyType: this.keyType,
        directory: this.spec.directoryUrl,
        error: errorText(err),
        attempt: this.failures,
        retryInMs: delay,
        serving: previous !== undefined ? `previous certificate (until ${previous.notAfter.toISOString()})` : 'temporary self-signed certificate',
      },
      'acme order failed',
    );
    this.manager.forgetAccount(this.spec);
    this.setTimer(delay);
  }
}

const LOCKED_RETRY_MS = 30_000;
/** A lock older than this is from a process that died mid-order. */
const STALE_LOCK_MS = 10 * 60_000;

/** Takes `<dir>/order.lock` (O_EXCL); returns the release, or undefined when a live process holds it. */
function lockOrder(dir: string): (() => void) | undefined {
  const file = path.join(dir, 'order.lock');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx', 0o600);
      fs.writeSync(fd, `${process.pid}\n`);
      fs.closeSync(fd);
      return () => fs.rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (!staleLock(file)) return undefined;
      fs.rmSync(file, { force: true });
    }
  }
  return undefined;
}

function staleLock(file: string): boolean {
  try {
    const age = Date.now() - fs.statSync(file).mtimeMs;
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    if (age > STALE_LOCK_MS || !Number.isInteger(pid) || pid <= 0 || pid === process.pid) return true;
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH' || (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

function rotate<T>(list: readonly T[], by: number): T[] {
  const n = by % list.length;
  return [...list.slice(n), ...list.slice(0, n)];
}

function errorText(err: unknown): string {
  const e = err as Error & { code?: string };
  const text = e.message || String(err);
  return e.code !== undefined && !text.includes(e.code) ? `${e.code}: ${text}` : text;
}

export class AcmeManager {
  private readonly jobs = new Map<string, CertificateJob>();
  private readonly clients = new Map<string, Promise<AcmeClient>>();
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;
  private trustKey = '';

  /** Applies the ACME specs of a (new) configuration: starts, keeps or stops jobs. */
  update(specs: readonly AcmeServerSpec[]): void {
    if (this.stopped) return;
    const wanted = new Map<string, { spec: AcmeServerSpec; keyType: AcmeKeyType }>();
    for (const spec of specs) for (const keyType of spec.keyTypes) wanted.set(`${spec.storage}\0${spec.lineage}\0${keyType}`, { spec, keyType });
    for (const [key, job] of this.jobs) {
      const w = wanted.get(key);
      if (w === undefined || JSON.stringify(w.spec) !== JSON.stringify(job.spec)) {
        job.cancel();
        this.jobs.delete(key);
      }
    }
    void this.configureTrust(specs);
    for (const [key, w] of wanted) {
      if (this.jobs.has(key)) continue;
      const job = new CertificateJob(this, w.spec, w.keyType);
      this.jobs.set(key, job);
      job.evaluate();
    }
  }

  stop(): void {
    this.stopped = true;
    for (const job of this.jobs.values()) job.cancel();
    this.jobs.clear();
  }

  /** Runs orders one at a time. */
  enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(task, task);
  }

  /** Extra roots for the directory's HTTPS (acme_ca_root), added to Node's own and NODE_EXTRA_CA_CERTS. */
  private async configureTrust(specs: readonly AcmeServerSpec[]): Promise<void> {
    const roots = [...new Set(specs.map((s) => s.caRoot).filter((r): r is string => r !== undefined))].sort();
    const key = roots.join('\n');
    if (key === this.trustKey) return;
    this.trustKey = key;
    const acme = await loadAcme();
    if (roots.length === 0) {
      delete acme.axios.defaults.httpsAgent;
      return;
    }
    const ca: string[] = [...tls.rootCertificates];
    const extra = process.env.NODE_EXTRA_CA_CERTS;
    for (const file of extra === undefined || extra === '' ? roots : [extra, ...roots]) {
      try {
        ca.push(fs.readFileSync(file, 'utf8'));
      } catch (err) {
        log().error({ file, error: (err as Error).message }, 'acme_ca_root cannot be read');
      }
    }
    acme.axios.defaults.httpsAgent = new https.Agent({ ca, keepAlive: true });
  }

  forgetAccount(spec: AcmeServerSpec): void {
    this.clients.delete(accountDir(spec.storage, spec.directoryUrl, spec.email, spec.eab?.kid));
  }

  /** An ACME client with a registered account for the spec's CA (created once, then reused). */
  private client(spec: AcmeServerSpec): Promise<AcmeClient> {
    const dir = accountDir(spec.storage, spec.directoryUrl, spec.email, spec.eab?.kid);
    const existing = this.clients.get(dir);
    if (existing !== undefined) return existing;
    const created = (async () => {
      const acme = await loadAcme();
      const keyFile = path.join(dir, 'account.key');
      let accountKey = readIfExists(keyFile);
      if (accountKey === undefined) {
        accountKey = await acme.crypto.createPrivateEcdsaKey('P-256');
        writePrivateFile(keyFile, accountKey);
      }
      const client = new acme.Client({
        directoryUrl: spec.directoryUrl,
        accountKey,
        ...(spec.eab === undefined ? {} : { externalAccountBinding: { kid: spec.eab.kid, hmacKey: spec.eab.hmacKey } }),
        // Polling of challenge and order status: fast first, then slower.
        backoffAttempts: 14,
        backoffMin: 100,
        backoffMax: 5000,
      });
      await client.createAccount({ termsOfServiceAgreed: true, ...(spec.email === undefined ? {} : { contact: [`mailto:${spec.email}`] }) });
      const url = client.getAccountUrl();
      writePublicFile(path.join(dir, 'account.json'), JSON.stringify({ directory: spec.directoryUrl, email: spec.email, url }) + '\n');
      log().info({ directory: spec.directoryUrl, account: url, email: spec.email, eab: spec.eab?.kid }, 'acme account ready');
      return client;
    })();
    created.catch(() => this.clients.delete(dir));
    this.clients.set(dir, created);
    return created;
  }

  /** Places an order and returns the checked certificate and its new key. */
  async obtain(spec: AcmeServerSpec, keyType: AcmeKeyType, challenges: readonly ChallengeType[]): Promise<LoadedPair> {
    const acme = await loadAcme();
    const client = await this.client(spec);
    const identifiers = spec.names.map((value) => ({ type: net.isIP(value) !== 0 ? 'ip' : 'dns', value }));
    const order = await client.createOrder({ identifiers });
    const authorizations = await client.getAuthorizations(order);
    await Promise.all(authorizations.map((authz) => this.authorize(acme, client, spec, authz, challenges)));
    const key = keyType === 'rsa' ? await acme.crypto.createPrivateRsaKey(2048) : await acme.crypto.createPrivateEcdsaKey('P-256');
    const first = spec.names[0]!;
    const [, csr] = await acme.crypto.createCsr({ ...(first.length <= 64 ? { commonName: first } : {}), altNames: [...spec.names] }, key);
    const finalized = await client.finalizeOrder(order, csr);
    const pem = await client.getCertificate(finalized);
    return checkPair(Buffer.from(pem), key);
  }

  private async authorize(acme: AcmeModule, client: AcmeClient, spec: AcmeServerSpec, authz: Authorization, preferred: readonly ChallengeType[]): Promise<void> {
    if (authz.status === 'valid') return;
    const name = authz.identifier.value;
    const challenge = preferred.map((type) => authz.challenges.find((c) => c.type === type)).find((c) => c !== undefined);
    if (challenge === undefined) throw new Error(`the CA offers none of ${preferred.join(', ')} for "${name}" (offered: ${authz.challenges.map((c) => c.type).join(', ')})`);
    const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
    let file: string;
    if (challenge.type === 'http-01') {
      file = path.join(http01Dir(spec.storage), (challenge as { token: string }).token);
      writePublicFile(file, keyAuthorization);
    } else {
      const [alpnKey, alpnCert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization, await acme.crypto.createPrivateEcdsaKey('P-256'));
      file = tlsAlpn01File(spec.storage, name);
      writePrivateFile(file, Buffer.concat([alpnKey, Buffer.from('\n'), alpnCert]));
    }
    try {
      log().info({ name, challenge: challenge.type }, 'acme challenge ready');
      await client.completeChallenge(challenge);
      await client.waitForValidStatus(challenge);
    } catch (err) {
      throw new Error(`${challenge.type} validation of "${name}" failed: ${errorText(err)}`);
    } finally {
      removeFile(file);
    }
  }
}
