/**
 * Certificate files on disk, watched: when certbot (or ACME in fulcrum's
 * supervisor, or anyone) replaces them, the new pair is read, checked and
 * handed to the listeners that use it, so new handshakes get it within
 * seconds, with no reload and no connection dropped.
 *
 * How changes are seen:
 *  - `fs.watch` on the directories holding the files (and, for symlinks, the
 *    directories they point into): certbot swaps the symlinks in live/ to new
 *    files in archive/, and inotify reports that at once;
 *  - a poll every 2 s of `stat` (which follows symlinks: a new target is a new
 *    inode) catches whatever inotify misses (network file systems, a
 *    directory that did not exist yet).
 *
 * A changed pair is only taken once it is complete and consistent: both files
 * parse, the key matches the certificate. Writers replace the two files one
 * after the other, so a mismatch is re-checked shortly before it is reported;
 * a pair that stays broken is logged once ("certificate files invalid:
 * keeping the previous certificate") and the previous certificate stays in
 * use. One registry per process; each file pair is read once however many
 * listeners use it.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { log } from '../log/error-log.js';

const POLL_MS = 2000;
/** fs.watch events are coalesced for this long before the files are read. */
const SETTLE_MS = 100;
/** A broken pair is re-read once after this delay before it is reported (a writer may be between the two files). */
const RECHECK_MS = 500;

export interface LoadedPair {
  cert: Buffer;
  key: Buffer;
  /** The leaf certificate. */
  x509: crypto.X509Certificate;
  /** The certificates after the leaf (intermediates), for OCSP. */
  chain: crypto.X509Certificate[];
  fingerprint: string;
  keyType: string;
  notBefore: Date;
  notAfter: Date;
}

/** Reads and checks a certificate/key pair. Throws with a message saying what is wrong. */
export function readPair(certPath: string, keyPath: string): LoadedPair {
  const cert = fs.readFileSync(certPath);
  const key = fs.readFileSync(keyPath);
  return checkPair(cert, key);
}

/** Checks PEM text: the certificate parses, the key parses and belongs to it. */
export function checkPair(cert: Buffer, key: Buffer): LoadedPair {
  const pems = cert.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (pems === null) throw new Error('no PEM certificate found');
  let certs: crypto.X509Certificate[];
  try {
    certs = pems.map((p) => new crypto.X509Certificate(p));
  } catch (err) {
    throw new Error(`certificate does not parse: ${(err as Error).message}`);
  }
  let privateKey: crypto.KeyObject;
  try {
    privateKey = crypto.createPrivateKey(key);
  } catch (err) {
    throw new Error(`private key does not parse: ${(err as Error).message}`);
  }
  const leaf = certs[0]!;
  if (!leaf.checkPrivateKey(privateKey)) throw new Error('the private key does not match the certificate');
  return {
    cert,
    key,
    x509: leaf,
    chain: certs.slice(1),
    fingerprint: leaf.fingerprint256,
    keyType: privateKey.asymmetricKeyType ?? 'unknown',
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
  };
}

/** `stat` signature of a file: changes when the file (or the target of its symlink) changes. */
function signatureOf(file: string): string {
  try {
    const s = fs.statSync(file);
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
  } catch (err) {
    return `missing:${(err as NodeJS.ErrnoException).code ?? ''}`;
  }
}

export type PairListener = (pair: LoadedPair) => void;

/** One watched certificate/key file pair. */
export class WatchedPair {
  /** The last good pair read, kept while the files are missing or broken. */
  current: LoadedPair | undefined;
  /** Why the files are not usable right now ('' when they are). */
  problem = '';
  private signature = '';
  private badSince: string | undefined;
  private recheckTimer: NodeJS.Timeout | undefined;
  readonly listeners = new Set<PairListener>();
  /** Directories watched for this pair. */
  readonly dirs = new Set<string>();

  constructor(
    readonly certPath: string,
    readonly keyPath: string,
    /** Logged as the owner of the files ("acme" for certificates fulcrum obtains itself). */
    readonly label: string,
  ) {}

  get missing(): boolean {
    return this.problem.startsWith('missing');
  }

  /** Reads the files now (the first time) without logging; returns the problem text or ''. */
  loadInitial(): string {
    this.signature = this.currentSignature();
    try {
      this.current = readPair(this.certPath, this.keyPath);
      this.problem = '';
    } catch (err) {
      this.problem = describeProblem(err);
    }
    return this.problem;
  }

  private currentSignature(): string {
    return `${signatureOf(this.certPath)}|${signatureOf(this.keyPath)}`;
  }

  /** Called on a poll or a watch event: reads the files again if they changed. */
  check(): void {
    const signature = this.currentSignature();
    if (signature === this.signature) return;
    this.signature = signature;
    this.read(false);
  }

  private read(recheck: boolean): void {
    let pair: LoadedPair;
    try {
      pair = readPair(this.certPath, this.keyPath);
    } catch (err) {
      const problem = describeProblem(err);
      if (!recheck) {
        // A writer may be between the two files: look again shortly before reporting.
        clearTimeout(this.recheckTimer);
        this.recheckTimer = setTimeout(() => {
          this.recheckTimer = undefined;
          this.signature = this.currentSignature();
          this.read(true);
        }, RECHECK_MS);
        this.recheckTimer.unref();
        return;
      }
      if (this.badSince === this.signature) return;
      this.badSince = this.signature;
      this.problem = problem;
      if (problem.startsWith('missing')) {
        log().warn({ cert: this.certPath, key: this.keyPath, problem, keeping: this.current?.fingerprint }, this.current === undefined ? 'certificate files not found yet' : 'certificate files removed: keeping the previous certificate');
      } else {
        log().error({ cert: this.certPath, key: this.keyPath, problem, keeping: this.current?.fingerprint }, 'certificate files invalid: keeping the previous certificate');
      }
      return;
    }
    this.badSince = undefined;
    this.problem = '';
    if (this.current !== undefined && this.current.fingerprint === pair.fingerprint && this.current.key.equals(pair.key)) return;
    this.current = pair;
    log().info(
      { cert: this.certPath, source: this.label, fingerprint: pair.fingerprint, subject: pair.x509.subject.replace(/\n/g, ', '), notAfter: pair.notAfter.toISOString() },
      'certificate reloaded',
    );
    if (pair.notAfter.getTime() < Date.now()) log().warn({ cert: this.certPath, notAfter: pair.notAfter.toISOString() }, 'certificate has expired');
    for (const listener of [...this.listeners]) listener(pair);
  }

  dispose(): void {
    clearTimeout(this.recheckTimer);
  }
}

function describeProblem(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return `missing: ${e.path ?? ''}`;
  if (e.code === 'EACCES') return `permission denied: ${e.path ?? ''}`;
  return e.message;
}

export interface PairHandle {
  readonly pair: WatchedPair;
  release(): void;
}

/** The process-wide registry of watched pairs. */
export class CertificateWatcher {
  private readonly pairs = new Map<string, { pair: WatchedPair; refs: number }>();
  private readonly watchers = new Map<string, { watcher: fs.FSWatcher | undefined; refs: number }>();
  private pollTimer: NodeJS.Timeout | undefined;
  private settleTimer: NodeJS.Timeout | undefined;
  private readonly dirty = new Set<string>();

  /**
   * Starts watching a pair (or shares the existing watch) and calls
   * `onChange` with every new good pair. The first read happens here.
   */
  acquire(certPath: string, keyPath: string, label: string, onChange: PairListener): PairHandle {
    const key = `${certPath}\0${keyPath}`;
    let entry = this.pairs.get(key);
    if (entry === undefined) {
      const pair = new WatchedPair(certPath, keyPath, label);
      pair.loadInitial();
      entry = { pair, refs: 0 };
      this.pairs.set(key, entry);
      for (const dir of watchedDirs(certPath, keyPath)) {
        pair.dirs.add(dir);
        this.watchDir(dir);
      }
    } else {
      // Someone else already watches it: make sure what we hand out is current.
      entry.pair.check();
    }
    entry.refs++;
    entry.pair.listeners.add(onChange);
    this.ensurePolling();
    let released = false;
    const found = entry;
    return {
      pair: found.pair,
      release: () => {
        if (released) return;
        released = true;
        found.pair.listeners.delete(onChange);
        if (--found.refs > 0) return;
        this.pairs.delete(key);
        found.pair.dispose();
        for (const dir of found.pair.dirs) this.unwatchDir(dir);
        if (this.pairs.size === 0 && this.pollTimer !== undefined) {
          clearInterval(this.pollTimer);
          this.pollTimer = undefined;
        }
      },
    };
  }

  /** Checks every pair now (tests, and the poll). */
  checkAll(): void {
    for (const { pair } of this.pairs.values()) pair.check();
  }

  private ensurePolling(): void {
    if (this.pollTimer !== undefined) return;
    this.pollTimer = setInterval(() => this.checkAll(), POLL_MS);
    this.pollTimer.unref();
  }

  private watchDir(dir: string): void {
    const existing = this.watchers.get(dir);
    if (existing !== undefined) {
      existing.refs++;
      return;
    }
    let watcher: fs.FSWatcher | undefined;
    try {
      watcher = fs.watch(dir, { persistent: false }, () => this.onDirEvent(dir));
      watcher.on('error', () => undefined);
    } catch {
      // The directory does not exist (yet): the poll covers it.
      watcher = undefined;
    }
    this.watchers.set(dir, { watcher, refs: 1 });
  }

  private unwatchDir(dir: string): void {
    const existing = this.watchers.get(dir);
    if (existing === undefined) return;
    if (--existing.refs > 0) return;
    existing.watcher?.close();
    this.watchers.delete(dir);
  }

  private onDirEvent(dir: string): void {
    this.dirty.add(dir);
    if (this.settleTimer !== undefined) return;
    this.settleTimer = setTimeout(() => {
      this.settleTimer = undefined;
      const dirs = new Set(this.dirty);
      this.dirty.clear();
      for (const { pair } of this.pairs.values()) {
        for (const d of pair.dirs) {
          if (dirs.has(d)) {
            pair.check();
            break;
          }
        }
      }
    }, SETTLE_MS);
    this.settleTimer.unref();
  }
}

/** The directories whose entries decide what the two paths point to. */
function watchedDirs(certPath: string, keyPath: string): Set<string> {
  const dirs = new Set<string>();
  for (const file of [certPath, keyPath]) {
    dirs.add(path.dirname(file));
    try {
      // certbot: live/NAME/fullchain.pem -> ../../archive/NAME/fullchainN.pem
      const target = fs.realpathSync(file);
      dirs.add(path.dirname(target));
    } catch {
      // missing for now
    }
  }
  return dirs;
}

export const certificateWatcher = new CertificateWatcher();
