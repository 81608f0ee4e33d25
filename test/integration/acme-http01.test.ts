/**
 * Built-in ACME against a real CA (pebble) with real HTTP-01 validation, and
 * two workers (the supervisor orders, the workers serve):
 *
 *  1. the CA is down at start: the names are served a temporary self-signed
 *     certificate and the failed order is retried with backoff;
 *  2. the CA comes up: the certificate is obtained (pebble fetched the token
 *     from fulcrum's port-80 listener, past `return 301` and `redirect_https`),
 *     and every new handshake gets it, on both names, from both workers; keys
 *     are stored 0600;
 *  3. the seed's certbot webroot keeps working beside it for other tokens;
 *  4. pebble issues 6-second certificates: fulcrum renews when a third of the
 *     lifetime remains, and serves the new one without a reload;
 *  5. the CA goes away: the renewal fails, is retried, and the old
 *     certificate is still served; the CA comes back (a fresh one, which no
 *     longer knows the account): a new account and certificate are obtained.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnBackends, type TestBackends } from '../support/backends.js';
import { startFulcrum, type FulcrumProcess, type LogEntry } from '../support/fulcrum.js';
import { request } from '../support/http-client.js';
import { startPebble, pebbleInstalled, type Pebble } from '../support/pebble.js';
import { freePorts } from '../support/ports.js';
import { isSelfSigned, probe } from '../support/tls-probe.js';
import { tempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';

const skip = pebbleInstalled() ? false : 'pebble is not installed (apt-get install pebble)';
const VALIDITY_S = 6;

let backends: TestBackends;
let pebble: Pebble;
let fulcrum: FulcrumProcess;
let httpPort: number;
let httpsPort: number;
let storage: string;
let webroot: string;

function obtained(): LogEntry[] {
  return fulcrum.logs.filter((e) => e.msg === 'acme certificate obtained');
}

async function waitObtained(count: number, timeoutMs: number): Promise<LogEntry> {
  await fulcrum.waitForLog(() => obtained().length >= count, timeoutMs);
  return obtained()[count - 1]!;
}

/** Waits until new handshakes for `name` present the certificate with `fingerprint` (the workers' watchers). */
async function waitServed(name: string, fingerprint: string, ca?: string): Promise<number> {
  const t0 = Date.now();
  await waitUntil(async () => (await probe(httpsPort, { servername: name })).fingerprint === fingerprint, { timeoutMs: 5000, intervalMs: 20, description: `${name} served ${fingerprint}` });
  if (ca !== undefined) {
    const p = await probe(httpsPort, { servername: name, ca, rejectUnauthorized: true });
    assert.equal(p.ok, true, p.error);
    assert.equal(p.authorized, true);
  }
  return Date.now() - t0;
}

before(async () => {
  if (skip) return;
  backends = await spawnBackends(1);
  [httpPort, httpsPort] = (await freePorts(2)) as [number, number];
  pebble = await startPebble({ httpPort, tlsPort: httpsPort, validitySeconds: VALIDITY_S, deferStart: true });
  const dir = tempDir('fulcrum-acme-http01-');
  storage = join(dir, 'acme');
  webroot = join(dir, 'certbot');
  mkdirSync(join(webroot, '.well-known', 'acme-challenge'), { recursive: true });
  fulcrum = await startFulcrum({
    dir,
    config: `
worker_processes 2;
events {}
http {
  acme_storage ${storage};
  upstream app { server 127.0.0.1:${backends.ports[0]}; }
  # The seed's port 80: a certbot webroot, everything else redirected.
  server {
    listen 127.0.0.1:${httpPort};
    server_name a.test;
    location /.well-known/acme-challenge/ { root ${webroot}; }
    location / { return 301 https://$host$request_uri; }
  }
  server {
    listen 127.0.0.1:${httpPort};
    server_name b.test;
    redirect_https on;
  }
  server {
    listen 127.0.0.1:${httpsPort} ssl;
    server_name a.test b.test;
    acme on;
    acme_directory ${pebble.directoryUrl};
    acme_ca_root ${pebble.caCertPath};
    acme_email ops@a.test;
    acme_challenge http-01;
    acme_retry 300ms 1s;
    location / { proxy_pass http://app; }
  }
}
`,
  });
});

after(async () => {
  await fulcrum?.stop().catch(() => fulcrum.kill());
  await pebble?.close();
  await backends?.stop();
});

test('ACME HTTP-01 with pebble: temporary certificate, issuance, renewal, a CA that goes away', { skip, timeout: 60_000 }, async (t) => {
  await t.test('CA down at start: a temporary self-signed certificate is served and the order is retried', async () => {
    const failed = await fulcrum.waitForLog((e) => e.msg === 'acme order failed', 10_000);
    assert.match(String(failed.error), /ECONNREFUSED|connect/i);
    assert.equal(typeof failed.retryInMs, 'number');
    assert.ok((failed.retryInMs as number) <= 1100, 'acme_retry 300ms 1s bounds the backoff');
    assert.equal(failed.serving, 'temporary self-signed certificate');
    assert.ok(fulcrum.logs.some((e) => e.msg === 'no ACME certificate yet: serving a temporary self-signed certificate until it is obtained'));
    const p = await probe(httpsPort, { servername: 'a.test' });
    assert.equal(p.ok, true, p.error);
    assert.ok(isSelfSigned(p.x509), 'self-signed');
    assert.match(p.x509!.subjectAltName ?? '', /DNS:a\.test/);
    assert.match(p.x509!.subjectAltName ?? '', /DNS:b\.test/);
  });

  let first: LogEntry;
  await t.test('the CA comes up: a certificate is obtained through HTTP-01 and served by every worker', async () => {
    const startedAt = Date.now();
    await pebble.start();
    first = await waitObtained(1, 10_000);
    t.diagnostic(`certificate obtained ${Date.now() - startedAt} ms after the CA came up; the order itself took ${first.ms} ms`);
    assert.deepEqual(first.names, ['a.test', 'b.test']);
    const root = await pebble.issuingRoot();
    const latency = await waitServed('a.test', first.fingerprint as string, root);
    t.diagnostic(`new handshakes got it ${latency} ms after it was written`);
    await waitServed('b.test', first.fingerprint as string, root);
    // Two workers: every handshake (the kernel spreads them) presents it.
    for (let i = 0; i < 12; i++) {
      const p = await probe(httpsPort, { servername: i % 2 === 0 ? 'a.test' : 'b.test', ca: root, rejectUnauthorized: true });
      assert.equal(p.fingerprint, first.fingerprint);
    }
    const reloads = fulcrum.logs.filter((e) => e.msg === 'certificate reloaded' && e.fingerprint === first.fingerprint);
    assert.equal(new Set(reloads.map((e) => e.pid)).size, 2, 'both workers picked the files up');
    assert.equal(first.pid, fulcrum.pid, 'the supervisor ordered it (once)');
    // pebble really validated over HTTP: the token requests reached port 80 and were answered 200.
    const tokenLines = fulcrum.stdout.filter((l) => /"GET \/\.well-known\/acme-challenge\/[A-Za-z0-9_-]+ HTTP\/1\.1" 200 /.test(l));
    assert.ok(tokenLines.length >= 2, `one validation per name:\n${fulcrum.stdout.join('\n')}`);
    // The response through the proxy works on the new certificate.
    const res = await request({ port: httpsPort, path: '/hello', headers: { host: 'a.test' }, tls: { ca: root, servername: 'a.test' } });
    assert.equal(res.status, 200);
  });

  await t.test('keys are stored 0600; the challenge files are gone', () => {
    const lineage = join(storage, 'certificates', 'a.test', 'ecdsa');
    assert.equal(statSync(join(lineage, 'privkey.pem')).mode & 0o777, 0o600);
    const accounts = readdirSync(join(storage, 'accounts'));
    assert.equal(accounts.length, 1);
    assert.equal(statSync(join(storage, 'accounts', accounts[0]!, 'account.key')).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(join(storage, 'http-01')), []);
  });

  await t.test("the seed's certbot webroot still answers its own tokens; other requests are still redirected", async () => {
    writeFileSync(join(webroot, '.well-known', 'acme-challenge', 'certbot-token'), 'certbot-key-authorization');
    const token = await request({ port: httpPort, path: '/.well-known/acme-challenge/certbot-token', headers: { host: 'a.test' } });
    assert.equal(token.status, 200);
    assert.equal(token.body.toString(), 'certbot-key-authorization');
    const a = await request({ port: httpPort, path: '/api/x?y=1', headers: { host: 'a.test' } });
    assert.equal(a.status, 301);
    assert.equal(a.headers.location, 'https://a.test/api/x?y=1');
    const b = await request({ port: httpPort, path: '/.well-known/acme-challenge/unknown', headers: { host: 'b.test' } });
    assert.equal(b.status, 301, 'redirect_https applies to anything that is not a pending ACME token');
  });

  let second: LogEntry;
  await t.test('renewal when a third of the lifetime remains, served without a reload', async () => {
    const scheduled = fulcrum.logs.find((e) => e.msg === 'acme renewal scheduled' && e.notAfter === first.notAfter);
    assert.ok(scheduled, 'a renewal was scheduled');
    const notBefore = Date.parse(first.notBefore as string);
    const notAfter = Date.parse(first.notAfter as string);
    const expected = notAfter - (notAfter - notBefore) / 3;
    assert.ok(Math.abs(Date.parse(scheduled.renewAt as string) - expected) < 1000, `renewAt ${String(scheduled.renewAt)} ~ ${new Date(expected).toISOString()}`);
    second = await waitObtained(2, (VALIDITY_S + 4) * 1000);
    assert.notEqual(second.fingerprint, first.fingerprint);
    await waitServed('a.test', second.fingerprint as string, await pebble.issuingRoot());
    assert.ok(!fulcrum.logs.some((e) => e.msg === 'reloaded'), 'no reload');
  });

  await t.test('the CA goes away: the renewal fails with backoff and the old certificate is still served; it comes back', async () => {
    await pebble.stop();
    const from = fulcrum.logs.length;
    const failed = await fulcrum.waitForLog((e) => e.msg === 'acme order failed', (VALIDITY_S + 4) * 1000, from);
    assert.match(String(failed.serving), /^previous certificate/);
    const p = await probe(httpsPort, { servername: 'a.test' });
    assert.equal(p.fingerprint, second.fingerprint, 'the old certificate is still served');
    await fulcrum.waitForLog((e) => e.msg === 'acme order failed' && (e.attempt as number) >= 2, 5000, from);
    await pebble.start();
    const third = await waitObtained(3, 10_000);
    await waitServed('b.test', third.fingerprint as string, await pebble.issuingRoot());
    assert.equal(obtained().filter((e) => e.pid !== fulcrum.pid).length, 0, 'only the supervisor orders');
  });
});
