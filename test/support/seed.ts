/**
 * The seed's nginx.conf (../shared/seed/nginx.conf) on loopback, for the
 * integration tests that show fulcrum doing what that configuration does.
 *
 * `seedConfig` reads the seed file at test time and changes only names,
 * ports and file paths: `listen 80` / `listen 443 ssl` become free 127.0.0.1
 * ports, `ubuntu_backend_N:8080` become the test backends' addresses,
 * `/var/www/certbot` a temporary webroot and `/etc/letsencrypt/...` a
 * certificate the test made. Every replacement must match exactly once, so a
 * change to the seed file fails loudly instead of silently testing something
 * else. Tests that need other values (a shorter fail_timeout, a 4th backend,
 * client_max_body_size) say so through the options, and nothing else changes.
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { SEED_FIXTURE_DIR } from './seed-files.js';
import { spawnBackends, type TestBackends } from './backends.js';
import { makeSelfSignedCert, type CertFiles } from './certs.js';
import { startFulcrum, type FulcrumProcess } from './fulcrum.js';
import { request, type HttpResponse, type RequestOptions } from './http-client.js';
import { freePorts } from './ports.js';
import { tempDir } from './tmp.js';

/** This file runs from dist/test/support/: the repository root is three levels up, the seed beside the repository. */
export const SEED_DIR = process.env.FULCRUM_SEED_DIR ?? SEED_FIXTURE_DIR;
export const SEED_NGINX_CONF = join(SEED_DIR, 'nginx.conf');
/** The seed's server_name, kept: it is the SNI name and the certificate's name in these tests. */
export const SEED_SERVER_NAME = 'blarybus.seunghooo.p-e.kr';
export const ACME_PREFIX = '/.well-known/acme-challenge/';

export interface SeedConfigParams {
  httpPort: number;
  httpsPort: number;
  /** One `server` line per port, with the seed's parameters (`max_fails=3 fail_timeout=30s` unless overridden). */
  upstreamPorts: readonly number[];
  webroot: string;
  certPath: string;
  keyPath: string;
  /** Replaces the `max_fails=3 fail_timeout=30s` of every server line. */
  serverParams?: string;
  /** Directives added to `location /api` (after proxy_pass), e.g. `client_max_body_size 0;`. */
  apiLocationExtra?: string;
}

/** Replaces the only occurrence of `from`; throws if there is none or several. */
export function replaceOnce(text: string, from: string, to: string): string {
  const first = text.indexOf(from);
  if (first < 0) throw new Error(`seed config: "${from}" not found`);
  if (text.indexOf(from, first + from.length) >= 0) throw new Error(`seed config: "${from}" found more than once`);
  return text.slice(0, first) + to + text.slice(first + from.length);
}

/** The seed's nginx.conf with names, ports and paths changed to loopback test ones. */
export function seedConfig(p: SeedConfigParams): string {
  let text = readFileSync(SEED_NGINX_CONF, 'utf8');
  text = replaceOnce(text, 'listen 80;', `listen 127.0.0.1:${p.httpPort};`);
  text = replaceOnce(text, 'listen 443 ssl;', `listen 127.0.0.1:${p.httpsPort} ssl;`);
  text = replaceOnce(text, 'root /var/www/certbot;', `root ${p.webroot};`);
  text = replaceOnce(text, `ssl_certificate /etc/letsencrypt/live/${SEED_SERVER_NAME}/fullchain.pem;`, `ssl_certificate ${p.certPath};`);
  text = replaceOnce(text, `ssl_certificate_key /etc/letsencrypt/live/${SEED_SERVER_NAME}/privkey.pem;`, `ssl_certificate_key ${p.keyPath};`);

  const serverLine = /^([ \t]*)server ubuntu_backend_(\d+):8080 ([^;\n]*);[ \t]*\n/gm;
  const lines = [...text.matchAll(serverLine)];
  if (lines.length !== 3) throw new Error(`seed config: expected 3 backend server lines, found ${lines.length}`);
  const indent = lines[0]![1]!;
  const params = p.serverParams ?? lines[0]![3]!;
  const start = lines[0]!.index;
  const last = lines[2]!;
  const end = last.index + last[0].length;
  const servers = p.upstreamPorts.map((port) => `${indent}server 127.0.0.1:${port} ${params};\n`).join('');
  text = text.slice(0, start) + servers + text.slice(end);

  if (p.apiLocationExtra !== undefined) {
    text = replaceOnce(text, 'proxy_pass http://backend_servers;', `proxy_pass http://backend_servers;\n            ${p.apiLocationExtra}`);
  }
  return text;
}

/** Line number (1-based) of the first line of `text` that contains `needle`. */
export function lineOf(text: string, needle: string): number {
  const index = text.split('\n').findIndex((line) => line.includes(needle));
  if (index < 0) throw new Error(`"${needle}" not in the config`);
  return index + 1;
}

export interface SeedEnvOptions {
  /** Backend processes to start (default 3), unless `backends` is given. */
  backendCount?: number;
  /** Backends the test started itself (not stopped by `stop()`). */
  backends?: TestBackends;
  /** What the upstream lists (default: the backends' ports), e.g. fault proxies in front of them. */
  upstreamPorts?: readonly number[];
  serverParams?: string;
  apiLocationExtra?: string;
}

export interface SeedEnv {
  fulcrum: FulcrumProcess;
  backends: TestBackends;
  httpPort: number;
  httpsPort: number;
  /** The directory of the run: config file, webroot, certificates. */
  dir: string;
  /** The `root` of the ACME location (the seed's /var/www/certbot). */
  webroot: string;
  cert: CertFiles;
  params: SeedConfigParams;
  configText: string;
  /** Client TLS options that trust the test certificate and send the seed's name as SNI. */
  tls: { ca: string; servername: string };
  /** SHA-256 fingerprint of the configured certificate, as X509Certificate#fingerprint256 gives it. */
  certFingerprint: string;
  /** An HTTPS request to the seed's 443 server. */
  https(path: string, opts?: Partial<RequestOptions>): Promise<HttpResponse>;
  /** A plain HTTP request to the seed's port-80 server. */
  http(path: string, opts?: Partial<RequestOptions>): Promise<HttpResponse>;
  /** Stops fulcrum (SIGTERM) and the backends this env started. */
  stop(): Promise<void>;
}

/** Makes the seed's certificate files (self-signed, for the seed's name, localhost and 127.0.0.1). */
export function makeSeedCert(dir: string): CertFiles {
  return makeSelfSignedCert(dir, {
    commonName: SEED_SERVER_NAME,
    altNames: [SEED_SERVER_NAME, 'localhost', '127.0.0.1'],
    fileBase: 'fullchain',
  });
}

export function fingerprint(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}

/** Starts backends (unless given), writes the seed config copy, starts fulcrum on it. */
export async function startSeed(opts: SeedEnvOptions = {}): Promise<SeedEnv> {
  const ownBackends = opts.backends === undefined;
  const backends = opts.backends ?? (await spawnBackends(opts.backendCount ?? 3));
  try {
    const dir = tempDir('fulcrum-seed-');
    const webroot = join(dir, 'www', 'certbot');
    mkdirSync(join(webroot, '.well-known', 'acme-challenge'), { recursive: true });
    const certDir = join(dir, 'letsencrypt', 'live', SEED_SERVER_NAME);
    mkdirSync(certDir, { recursive: true });
    const cert = makeSeedCert(certDir);
    const [httpPort, httpsPort] = await freePorts(2);
    const params: SeedConfigParams = {
      httpPort: httpPort!,
      httpsPort: httpsPort!,
      upstreamPorts: opts.upstreamPorts ?? backends.ports,
      webroot,
      certPath: cert.certPath,
      keyPath: cert.keyPath,
      serverParams: opts.serverParams,
      apiLocationExtra: opts.apiLocationExtra,
    };
    const configText = seedConfig(params);
    const fulcrum = await startFulcrum({ config: configText, dir, fileName: 'nginx.conf' });
    const tls = { ca: cert.cert, servername: SEED_SERVER_NAME };
    return {
      fulcrum,
      backends,
      httpPort: httpPort!,
      httpsPort: httpsPort!,
      dir,
      webroot,
      cert,
      params,
      configText,
      tls,
      certFingerprint: fingerprint(cert.cert),
      https: (path, extra = {}) => request({ port: httpsPort!, path, tls, ...extra }),
      http: (path, extra = {}) => request({ port: httpPort!, path, ...extra }),
      async stop() {
        try {
          await fulcrum.stop('SIGTERM', 10_000).catch(() => fulcrum.kill());
        } finally {
          if (ownBackends) await backends.stop();
        }
      },
    };
  } catch (err) {
    if (ownBackends) await backends.stop();
    throw err;
  }
}

/**
 * Resident set size in bytes (VmRSS from /proc) of a process and all its
 * descendants (fulcrum's workers, if it runs any), or undefined without /proc.
 */
export function rssBytes(pid: number): number | undefined {
  const own = processRss(pid);
  if (own === undefined) return undefined;
  let total = own;
  for (const child of childPids(pid)) total += rssBytes(child) ?? 0;
  return total;
}

function processRss(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? undefined : Number(m[1]) * 1024;
  } catch {
    return undefined;
  }
}

function childPids(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
      try {
        return readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      } catch {
        return [];
      }
    });
  } catch {
    return [];
  }
}

/** Requests a backend counted (read from it directly, not through fulcrum): all of them, or those for one path as sent (e.g. `/api/slow`). */
export async function backendCount(port: number, path?: string): Promise<number> {
  const r = await request({ port, path: '/count', timeoutMs: 5000 });
  const counts = JSON.parse(r.body.toString()) as { total: number; paths: Record<string, number> };
  return path === undefined ? counts.total : (counts.paths[path] ?? 0);
}
