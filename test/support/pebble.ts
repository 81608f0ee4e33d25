/**
 * A real ACME server on loopback for tests: Debian's `pebble` (Let's
 * Encrypt's test CA), with `pebble-challtestsrv` as its DNS server so any
 * test name (a.test, b.test ...) resolves to 127.0.0.1.
 *
 * Pebble's own HTTPS certificate is made here with openssl (a test CA; give
 * `caCertPath` to fulcrum as `acme_ca_root`). `httpPort` and `tlsPort` are
 * where pebble's validation authority connects for HTTP-01 and TLS-ALPN-01:
 * fulcrum's listeners. The issuing root changes at every start: `issuingRoot()`
 * fetches it from the management interface. Pebble rejects 5% of nonces on
 * purpose (`badNonce`), so clients must retry; authorization reuse is off so
 * every order is really validated.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { killWithParent } from '../../src/demo/replicas.js';
import { makeCA, signCert, type CertFiles } from './certs.js';
import { freePorts } from './ports.js';
import { tempDir } from './tmp.js';
import { sleep } from './wait.js';

export const PEBBLE_BIN = '/usr/bin/pebble';
export const CHALLTESTSRV_BIN = '/usr/bin/pebble-challtestsrv';

export function pebbleInstalled(): boolean {
  return existsSync(PEBBLE_BIN) && existsSync(CHALLTESTSRV_BIN);
}

export interface PebbleOptions {
  /** Where pebble validates HTTP-01 (fulcrum's plain listener port). */
  httpPort: number;
  /** Where pebble validates TLS-ALPN-01 (fulcrum's TLS listener port). */
  tlsPort: number;
  /** Lifetime of issued certificates in seconds (pebble's default is 5 years). */
  validitySeconds?: number;
  /** External Account Binding required, with these key identifiers and base64url HMAC keys. */
  eabKeys?: Record<string, string>;
  /** Extra environment, e.g. PEBBLE_WFE_NONCEREJECT. */
  env?: Record<string, string>;
  /** Choose ports and write the config, but start the CA only at `start()` (a CA that is down at first). */
  deferStart?: boolean;
}

export interface Pebble {
  readonly directoryUrl: string;
  readonly managementUrl: string;
  /** The test CA that signed pebble's HTTPS certificate (fulcrum's acme_ca_root). */
  readonly ca: CertFiles;
  readonly caCertPath: string;
  readonly logs: string[];
  /** The root pebble issues from (changes at every start). */
  issuingRoot(): Promise<string>;
  /** Stops pebble (the CA goes away; the DNS server stays). */
  stop(): Promise<void>;
  /** Starts pebble again on the same ports (a fresh CA: new roots, no accounts). */
  start(): Promise<void>;
  /** Stops pebble and its DNS server. */
  close(): Promise<void>;
}

export async function startPebble(opts: PebbleOptions): Promise<Pebble> {
  const dir = tempDir('fulcrum-pebble-');
  const ca = makeCA(dir, { commonName: 'Pebble HTTPS test CA' });
  const cert = signCert(ca, dir, { commonName: 'localhost', altNames: ['localhost', '127.0.0.1'], fileBase: 'pebble' });
  const [acmePort, managementPort, dnsPort, dnsManagementPort] = await freePorts(4);
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${acmePort}`,
      managementListenAddress: `127.0.0.1:${managementPort}`,
      certificate: cert.certPath,
      privateKey: cert.keyPath,
      httpPort: opts.httpPort,
      tlsPort: opts.tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: opts.eabKeys !== undefined,
      ...(opts.eabKeys === undefined ? {} : { externalAccountMACKeys: opts.eabKeys }),
      ...(opts.validitySeconds === undefined ? {} : { certificateValidityPeriod: opts.validitySeconds }),
    },
  };
  const configPath = join(dir, 'pebble-config.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const logs: string[] = [];

  const dns = spawn(
    CHALLTESTSRV_BIN,
    ['-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${dnsManagementPort}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', ''],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  killWithParent(dns);
  collectLines(dns, logs, 'dns');
  await waitForLine(logs, /Starting management server/, 5000, dns);

  let pebble: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const child = spawn(PEBBLE_BIN, ['-config', configPath, '-strict=false', '-dnsserver', `127.0.0.1:${dnsPort}`], {
      cwd: dir,
      env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_AUTHZREUSE: '0', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    killWithParent(child);
    pebble = child;
    const from = logs.length;
    collectLines(child, logs, 'pebble');
    await waitForLine(logs, /ACME directory available/, 10_000, child, from);
  };
  const stop = async (): Promise<void> => {
    const child = pebble;
    pebble = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(3000).then(() => child.kill('SIGKILL'))]);
    await exited;
  };
  if (opts.deferStart !== true) await start();

  return {
    directoryUrl: `https://127.0.0.1:${acmePort}/dir`,
    managementUrl: `https://127.0.0.1:${managementPort}`,
    ca,
    caCertPath: ca.certPath,
    logs,
    issuingRoot: () => httpsGetText(`https://127.0.0.1:${managementPort}/roots/0`, ca.cert),
    stop,
    start,
    close: async () => {
      await stop();
      dns.kill('SIGKILL');
    },
  };
}

function collectLines(child: ChildProcess, logs: string[], tag: string): void {
  for (const stream of [child.stdout!, child.stderr!]) createInterface({ input: stream }).on('line', (line) => logs.push(`${tag}: ${line}`));
}

async function waitForLine(logs: string[], pattern: RegExp, timeoutMs: number, child: ChildProcess, from = 0): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (logs.slice(from).some((l) => pattern.test(l))) return;
    if (child.exitCode !== null) break;
    await sleep(20);
  }
  throw new Error(`pebble did not start (waiting for ${pattern}):\n${logs.join('\n')}`);
}

export function httpsGetText(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString()) : reject(new Error(`${url}: HTTP ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timed out`)));
    req.on('error', reject);
  });
}
