/**
 * The ACME directives in both config formats, their validation, and what the
 * compiled table makes of them: the spec per `acme on` server, the
 * certificate files it serves, and which plain-HTTP servers answer HTTP-01.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { ConfigError, formatDiagnostic } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { LogSinks } from '../../src/log/access-log.js';
import { compile } from '../../src/runtime/compile.js';
import type { RuntimeTable } from '../../src/runtime/table.js';
import { AcmeChallengeLocations } from '../../src/tls/acme/http01.js';
import { acmeSpecsOf } from '../../src/tls/acme/service.js';
import { ServerRegistry } from '../../src/upstream/group.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fulcrum-acme-config-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

function build(name: string, text: string): { table: RuntimeTable; warnings: string[] } {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  const { table, warnings } = compile(loadConfig(file), { registry: new ServerRegistry(), logSinks: new LogSinks(), generation: 1, dryRun: true });
  return { table, warnings: warnings.map((w) => formatDiagnostic(w).replace(dir + '/', '')) };
}

function problems(name: string, text: string): string[] {
  try {
    build(name, text);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.diagnostics.map((d) => formatDiagnostic(d).replace(dir + '/', ''));
  }
}

const NGINX = `
events {}
http {
  acme_storage /var/lib/fulcrum/acme;
  acme_email ops@example.org;
  server {
    listen 80;
    server_name example.org www.example.org;
    location /.well-known/acme-challenge/ { root /var/www/certbot; }
    location / { return 301 https://$host$request_uri; }
  }
  server {
    listen 80;
    server_name other.example;
    location /.well-known/acme-challenge/ { root /var/www/certbot; }
  }
  server {
    listen 443 ssl;
    server_name example.org www.example.org *.example.org;
    acme on;
    acme_directory letsencrypt_staging;
    acme_challenge tls-alpn-01 http-01;
    acme_key_type ecdsa rsa;
    acme_eab_kid kid-1;
    acme_eab_hmac_key c2VjcmV0;
    acme_renew_before 30d;
    acme_retry 1m 6h;
    acme_ca_root ca.pem;
    ssl_stapling on;
    location / { return 200; }
  }
}
`;

test('nginx syntax: an acme on server gets a spec and serves the files ACME writes', () => {
  const { table, warnings } = build('acme.conf', NGINX);
  const specs = acmeSpecsOf(table);
  assert.equal(specs.length, 1);
  const spec = specs[0]!;
  assert.deepEqual(spec.names, ['example.org', 'www.example.org']);
  assert.ok(warnings.some((w) => /"\*\.example\.org": wildcard names need the DNS-01 challenge/.test(w)), warnings.join('\n'));
  assert.equal(spec.directoryUrl, 'https://acme-staging-v02.api.letsencrypt.org/directory');
  assert.equal(spec.email, 'ops@example.org', 'inherited from http');
  assert.deepEqual(spec.eab, { kid: 'kid-1', hmacKey: 'c2VjcmV0' });
  assert.deepEqual(spec.challenges, ['tls-alpn-01', 'http-01']);
  assert.deepEqual(spec.keyTypes, ['ecdsa', 'rsa']);
  assert.equal(spec.renewBeforeMs, 30 * 86_400_000);
  assert.equal(spec.retryMinMs, 60_000);
  assert.equal(spec.retryMaxMs, 6 * 3_600_000);
  assert.equal(spec.storage, '/var/lib/fulcrum/acme');
  assert.equal(spec.caRoot, path.join(dir, 'ca.pem'));
  const tls = table.listeners.find((l) => l.ssl)!.tls[0]!;
  assert.deepEqual(tls.certificates, [
    { cert: '/var/lib/fulcrum/acme/certificates/example.org/ecdsa/fullchain.pem', key: '/var/lib/fulcrum/acme/certificates/example.org/ecdsa/privkey.pem', acme: true },
    { cert: '/var/lib/fulcrum/acme/certificates/example.org/rsa/fullchain.pem', key: '/var/lib/fulcrum/acme/certificates/example.org/rsa/privkey.pem', acme: true },
  ]);
  assert.equal(tls.stapling, true);
});

test('HTTP-01 tokens are answered by the plain server that receives the name, before its return; others keep their webroot', () => {
  const { table } = build('acme-http01.conf', NGINX);
  const plain = table.listeners.find((l) => !l.ssl)!;
  const receiving = plain.servers.find('www.example.org');
  assert.ok(receiving.locations instanceof AcmeChallengeLocations);
  const other = plain.servers.find('other.example');
  assert.ok(!(other.locations instanceof AcmeChallengeLocations), "a server no ACME name reaches keeps its own /.well-known/acme-challenge/");
  // No token file: the server's own locations answer as before.
  assert.equal(receiving.locations.find('/.well-known/acme-challenge/abc')!.value.label, 'location /.well-known/acme-challenge/');
  assert.equal(receiving.locations.find('/x')!.value.label, 'location /');
});

test('a server-level redirect_https still lets pending tokens through', () => {
  const storage = path.join(dir, 'store');
  const { table } = build(
    'redirect.conf',
    `events {} http { acme_storage ${storage};
      server { listen 8080; server_name a.example; redirect_https on; }
      server { listen 8443 ssl; server_name a.example; acme on; acme_challenge http-01; } }`,
  );
  const server = table.listeners.find((l) => !l.ssl)!.servers.find('a.example');
  assert.equal(server.serverReturn, undefined, 'the return moved behind the token check');
  assert.equal(server.locations.find('/anything')!.value.action.kind, 'return');
  fs.mkdirSync(path.join(storage, 'http-01'), { recursive: true });
  fs.writeFileSync(path.join(storage, 'http-01', 'tok_EN-1'), 'tok_EN-1.thumbprint');
  const hit = server.locations.find('/.well-known/acme-challenge/tok_EN-1')!.value;
  assert.equal(hit.action.kind, 'static');
  assert.equal(server.locations.find('/.well-known/acme-challenge/../../etc')!.value.action.kind, 'return');
});

test('YAML: the same keys', () => {
  const { table } = build(
    'acme.yaml',
    `
http:
  acme_storage: store
  servers:
    - listen: [{ port: 8443, ssl: true }]
      server_name: [y.example]
      acme: on
      acme_directory: https://ca.internal/acme/directory
      acme_key_type: [rsa]
      acme_retry: { min: 5s }
`,
  );
  const spec = acmeSpecsOf(table)[0]!;
  assert.equal(spec.directoryUrl, 'https://ca.internal/acme/directory');
  assert.deepEqual(spec.keyTypes, ['rsa']);
  assert.deepEqual(spec.challenges, ['http-01', 'tls-alpn-01'], 'default');
  assert.equal(spec.retryMinMs, 5000);
  assert.equal(spec.storage, path.join(dir, 'store'), 'relative to the config file');
  assert.equal(spec.renewBeforeMs, undefined, 'a third of the lifetime');
});

test('invalid ACME settings are errors with their line', () => {
  const wrap = (inner: string): string => `events {}\nhttp {\n  server {\n    listen 443 ssl;\n${inner}\n  }\n}\n`;
  assert.deepEqual(problems('bad1.conf', wrap('    server_name a.example;\n    acme on;\n    acme_challenge dns-01;')), [
    'bad1.conf:7:5: invalid value "dns-01" in "acme_challenge" directive, it must be "http-01" or "tls-alpn-01"',
  ]);
  assert.deepEqual(problems('bad2.conf', wrap('    server_name ~^re$;\n    acme on;')), ['bad2.conf:6:5: "acme on" needs a server_name with at least one host name (not a wildcard or regular expression)']);
  assert.deepEqual(problems('bad3.conf', wrap('    server_name a.example;\n    acme on;\n    acme_eab_kid k;')), ['bad3.conf:7:5: External Account Binding needs both acme_eab_kid and acme_eab_hmac_key']);
  assert.deepEqual(problems('bad4.conf', wrap('    server_name a.example;\n    acme on;\n    acme_directory ftp://x;')), [
    'bad4.conf:7:5: acme_directory "ftp://x" is not a URL or one of letsencrypt, letsencrypt_staging, zerossl, google, google_staging, buypass, buypass_staging',
  ]);
  assert.deepEqual(problems('bad5.conf', wrap('    server_name a.example;\n    acme_storage /x;')), ['bad5.conf:6:5: "acme_storage" directive is not allowed here (in server context)']);
});
