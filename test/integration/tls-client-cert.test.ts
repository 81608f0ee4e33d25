/**
 * Client certificates on TLS listeners: ssl_verify_client on / optional /
 * optional_no_ca / off, per server (chosen by SNI, each with its own CA), and
 * the $ssl_client_* variables reaching a backend through proxy_set_header.
 *
 * Checked against nginx 1.22 (Debian) with the same certificates and the
 * same `return 200 "$ssl_client_verify|$ssl_client_s_dn|..."` servers: the
 * variable values (RFC 2253 DNs, upper-case serial, lower-case SHA-1
 * fingerprint, "FAILED:unable to verify the first certificate"); a client
 * without a certificate on an `on` server gets HTTP 400 with the page "400
 * No required SSL certificate was sent", a certificate of another CA gets
 * "400 The SSL certificate error" (also with `optional`), and in both cases
 * the handshake succeeds and the connection is closed after the response;
 * `optional_no_ca` lets the unknown CA through with FAILED:...
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import http from 'node:http';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { makeCA, signCert, type CertFiles } from '../support/certs.js';
import { expectConfigError } from '../support/config-check.js';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { freePorts, listenOn } from '../support/ports.js';
import { request, type ClientTlsOptions } from '../support/http-client.js';
import { tempDir } from '../support/tmp.js';

let dir: string;
let fulcrum: FulcrumProcess;
let port: number;
let plainPort: number;
let serverCA: CertFiles;
let clientCA: CertFiles;
let otherCA: CertFiles;
let alice: CertFiles;
let mallory: CertFiles;
let backend: http.Server;
let backendPort: number;
const seenHeaders: http.IncomingHttpHeaders[] = [];

const SHOW = '"$ssl_client_verify|$ssl_client_s_dn|$ssl_client_i_dn|$ssl_client_serial|$ssl_client_fingerprint"';

before(async () => {
  dir = tempDir('fulcrum-tls-client-cert-');
  serverCA = makeCA(dir, { commonName: 'Server CA', fileBase: 'server-ca' });
  clientCA = makeCA(dir, { commonName: 'Client CA', fileBase: 'client-ca' });
  otherCA = makeCA(dir, { commonName: 'Other CA', fileBase: 'other-ca' });
  alice = signCert(clientCA, dir, { commonName: 'alice', fileBase: 'alice', altNames: ['alice.example'] });
  mallory = signCert(otherCA, dir, { commonName: 'mallory', fileBase: 'mallory', altNames: ['mallory.example'] });
  const names = ['on.test', 'optional.test', 'noca.test', 'off.test', 'other.test'];
  const serverCerts = Object.fromEntries(names.map((n) => [n, signCert(serverCA, dir, { commonName: n, fileBase: n })]));
  backend = http.createServer((req, res) => {
    seenHeaders.push(req.headers);
    res.end('backend\n');
  });
  backendPort = await listenOn(backend);
  [port, plainPort] = (await freePorts(2)) as [number, number];
  const server = (name: string, body: string, extra = ''): string => `
  server {
    listen 127.0.0.1:${port} ssl${name === 'off.test' ? ' default_server' : ''};
    listen 127.0.0.1:${plainPort};
    server_name ${name};
    ssl_certificate ${serverCerts[name]!.certPath};
    ssl_certificate_key ${serverCerts[name]!.keyPath};
    ${extra}
    ${body}
  }`;
  fulcrum = await startFulcrum({
    dir,
    config: `
events {}
http {
  access_log off;
  ${server(
    'on.test',
    `location / {
      proxy_pass http://127.0.0.1:${backendPort};
      proxy_set_header X-Client-Verify $ssl_client_verify;
      proxy_set_header X-Client-DN $ssl_client_s_dn;
      proxy_set_header X-Client-Issuer $ssl_client_i_dn;
      proxy_set_header X-Client-Cert $ssl_client_escaped_cert;
      proxy_set_header X-TLS "$ssl_protocol $ssl_cipher $ssl_server_name";
    }
    location /show { return 200 ${SHOW}; }`,
    `ssl_verify_client on; ssl_client_certificate ${clientCA.certPath};`,
  )}
  ${server('optional.test', `location / { return 200 ${SHOW}; }`, `ssl_verify_client optional; ssl_client_certificate ${clientCA.certPath};`)}
  ${server('noca.test', `location / { return 200 ${SHOW}; }`, 'ssl_verify_client optional_no_ca;')}
  ${server('off.test', `location / { return 200 ${SHOW}; }`)}
  ${server('other.test', `location / { return 200 ${SHOW}; }`, `ssl_verify_client on; ssl_client_certificate ${otherCA.certPath}; ssl_verify_depth 2;`)}
}
`,
  });
});

after(async () => {
  await fulcrum?.stop();
  backend?.close();
});

const get = (servername: string, client: CertFiles | undefined, path = '/') => {
  const tls: ClientTlsOptions = { ca: serverCA.cert, servername };
  if (client !== undefined) {
    tls.cert = client.cert;
    tls.key = client.key;
  }
  return request({ port, path, headers: { host: servername }, tls });
};

const show = (cert: CertFiles, verify: string): string => {
  const x = new X509Certificate(cert.cert);
  const issuer = x.issuer.split('\n').reverse().join(',');
  const subject = x.subject.split('\n').reverse().join(',');
  return `${verify}|${subject}|${issuer}|${x.serialNumber}|${x.fingerprint.replace(/:/g, '').toLowerCase()}`;
};

describe('ssl_verify_client on', () => {
  test('a certificate of the configured CA passes; its details reach the backend through proxy_set_header', async () => {
    const r = await get('on.test', alice);
    assert.equal(r.status, 200);
    const h = seenHeaders.at(-1)!;
    assert.equal(h['x-client-verify'], 'SUCCESS');
    assert.equal(h['x-client-dn'], 'CN=alice');
    assert.equal(h['x-client-issuer'], 'CN=Client CA');
    assert.equal(decodeURIComponent(String(h['x-client-cert'])), new X509Certificate(alice.cert).toString());
    assert.match(String(h['x-tls']), /^TLSv1\.3 TLS_\S+ on\.test$/);
  });

  test('the variables, as nginx formats them', async () => {
    const r = await get('on.test', alice, '/show');
    assert.equal(r.body.toString(), show(alice, 'SUCCESS'));
  });

  test('no certificate: 400 "No required SSL certificate was sent", the connection closed', async () => {
    const r = await get('on.test', undefined);
    assert.equal(r.status, 400);
    assert.match(r.body.toString(), /<title>400 No required SSL certificate was sent<\/title>/);
    assert.equal(r.headers.connection, 'close');
  });

  test('a certificate of another CA: 400 "The SSL certificate error"', async () => {
    const r = await get('on.test', mallory);
    assert.equal(r.status, 400);
    assert.match(r.body.toString(), /<title>400 The SSL certificate error<\/title>/);
  });

  test('each server verifies with its own CA (chosen by SNI)', async () => {
    assert.equal((await get('other.test', mallory)).status, 200);
    assert.equal((await get('other.test', alice)).status, 400);
  });

  test('a TLS session made on one server does not carry its verdict to a server that trusts another CA', async () => {
    // other.test trusts mallory's CA; on.test does not. Resuming other.test's session on on.test must not skip on.test's check.
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      let session: Buffer | undefined;
      const exchange = (servername: string): Promise<string> =>
        new Promise((resolve, reject) => {
          const socket = tls.connect({ host: '127.0.0.1', port, servername, ca: serverCA.cert, cert: mallory.cert, key: mallory.key, session, maxVersion });
          socket.on('session', (s: Buffer) => (session = s));
          socket.on('secureConnect', () => socket.write(`GET / HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`));
          let text = '';
          socket.on('data', (d: Buffer) => (text += d.toString()));
          socket.on('close', () => resolve(text));
          socket.on('error', reject);
        });
      assert.match(await exchange('other.test'), /^HTTP\/1\.1 200/);
      assert.ok(session !== undefined);
      assert.match(await exchange('on.test'), /^HTTP\/1\.1 400[^]*The SSL certificate error/, maxVersion);
    }
  });

  test('plain HTTP to a server that also listens with ssl is not refused', async () => {
    const r = await request({ port: plainPort, path: '/show', headers: { host: 'on.test' } });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), '||||');
  });
});

describe('ssl_verify_client optional, optional_no_ca, off', () => {
  test('optional: no certificate passes with NONE; a valid one with SUCCESS; another CA is refused, as nginx', async () => {
    assert.equal((await get('optional.test', undefined)).body.toString(), 'NONE||||');
    assert.equal((await get('optional.test', alice)).body.toString(), show(alice, 'SUCCESS'));
    const r = await get('optional.test', mallory);
    assert.equal(r.status, 400);
    assert.match(r.body.toString(), /The SSL certificate error/);
  });

  test('optional_no_ca: a certificate of an unknown CA passes, marked FAILED', async () => {
    const r = await get('noca.test', mallory);
    assert.equal(r.status, 200);
    // OpenSSL's error for a lone certificate whose issuer is unknown; nginx shows the same.
    assert.equal(r.body.toString(), show(mallory, 'FAILED:unable to verify the first certificate'));
  });

  test('off: passes without a certificate; one sent anyway is not looked at (NONE, as nginx, which does not ask)', async () => {
    const r = await get('off.test', undefined);
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'NONE||||');
    assert.equal((await get('off.test', alice)).body.toString(), 'NONE||||');
  });
});

describe('real clients', () => {
  test('curl --cert/--key/--cacert', async () => {
    const args = ['-sS', '--resolve', `on.test:${port}:127.0.0.1`, '--cacert', serverCA.certPath, `https://on.test:${port}/show`];
    const withCert = await promisify(execFile)('curl', ['--cert', alice.certPath, '--key', alice.keyPath, ...args]);
    assert.equal(withCert.stdout, show(alice, 'SUCCESS'));
    const without = await promisify(execFile)('curl', ['-o', '/dev/null', '-w', '%{http_code}', ...args]);
    assert.equal(without.stdout, '400');
  });
});

describe('configuration errors', () => {
  test('ssl_verify_client on without ssl_client_certificate, as nginx', async () => {
    await expectConfigError(
      dir,
      'no-client-ca',
      `events {}\nhttp {\n  server {\n    listen 127.0.0.1:9 ssl;\n    ssl_verify_client on;\n  }\n}\n`,
      { message: /no "ssl_client_certificate" for "ssl_verify_client"/ },
    );
  });

  test('an unreadable ssl_client_certificate', async () => {
    await expectConfigError(
      dir,
      'missing-client-ca',
      `events {}\nhttp {\n  server {\n    listen 127.0.0.1:9 ssl;\n    ssl_verify_client on;\n    ssl_client_certificate /nonexistent/ca.pem;\n  }\n}\n`,
      { message: /cannot read "\/nonexistent\/ca.pem".*ENOENT/ },
    );
  });

  test('an invalid ssl_verify_client value', async () => {
    await expectConfigError(dir, 'bad-verify', `events {}\nhttp {\n  ssl_verify_client yes;\n}\n`, { line: 3, message: /invalid value "yes" in "ssl_verify_client"/ });
  });
});
