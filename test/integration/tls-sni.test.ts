/**
 * Several certificates on one TLS listener, chosen by SNI with a default, RSA
 * and ECDSA side by side; the secure defaults (Mozilla intermediate); and an
 * explicit seed-style `ssl_ciphers HIGH:!aNULL:!MD5` honoured on another
 * listener.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { makeCA, signCert, type CertFiles } from '../support/certs.js';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { freePorts } from '../support/ports.js';
import { probe } from '../support/tls-probe.js';
import { tempDir } from '../support/tmp.js';

let fulcrum: FulcrumProcess;
let port: number;
let seedPort: number;
let ca: CertFiles;
const certs: Record<string, CertFiles> = {};

before(async () => {
  const dir = tempDir('fulcrum-tls-sni-');
  ca = makeCA(dir);
  certs.aRsa = signCert(ca, dir, { commonName: 'a.test', keyType: 'rsa', fileBase: 'a-rsa' });
  certs.aEc = signCert(ca, dir, { commonName: 'a.test', keyType: 'ec', fileBase: 'a-ec' });
  certs.b = signCert(ca, dir, { commonName: 'b.test', keyType: 'ec', fileBase: 'b' });
  certs.c = signCert(ca, dir, { commonName: 'c.test', keyType: 'rsa', fileBase: 'c' });
  [port, seedPort] = (await freePorts(2)) as [number, number];
  fulcrum = await startFulcrum({
    dir,
    config: `
events {}
http {
  access_log off;
  server {
    listen 127.0.0.1:${port} ssl;
    server_name a.test;
    ssl_certificate ${certs.aRsa.certPath};
    ssl_certificate_key ${certs.aRsa.keyPath};
    ssl_certificate ${certs.aEc.certPath};
    ssl_certificate_key ${certs.aEc.keyPath};
    location / { return 200 "a\\n"; }
  }
  server {
    listen 127.0.0.1:${port} ssl;
    server_name b.test *.b.test;
    ssl_certificate ${certs.b.certPath};
    ssl_certificate_key ${certs.b.keyPath};
    location / { return 200 "b\\n"; }
  }
  server {
    listen 127.0.0.1:${port} ssl default_server;
    server_name c.test;
    ssl_certificate ${certs.c.certPath};
    ssl_certificate_key ${certs.c.keyPath};
    location / { return 200 "c\\n"; }
  }
  # The seed's explicit settings, honoured.
  server {
    listen 127.0.0.1:${seedPort} ssl;
    server_name a.test;
    ssl_certificate ${certs.aRsa.certPath};
    ssl_certificate_key ${certs.aRsa.keyPath};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers HIGH:!aNULL:!MD5;
    ssl_prefer_server_ciphers on;
    location / { return 200 "seed\\n"; }
  }
}
`,
  });
});

after(async () => {
  await fulcrum?.stop();
});

const fp = (c: CertFiles): string => new X509Certificate(c.cert).fingerprint256;

describe('SNI: several certificates on one listener', () => {
  test('a.test has RSA and ECDSA certificates: the client’s signature algorithms pick one, both valid', async () => {
    const ec = await probe(port, { servername: 'a.test', ca: ca.cert, sigalgs: 'ECDSA+SHA256' });
    assert.equal(ec.fingerprint, fp(certs.aEc!));
    assert.equal(ec.authorized, true, ec.authorizationError);
    const rsa = await probe(port, { servername: 'a.test', ca: ca.cert, sigalgs: 'RSA-PSS+SHA256:RSA+SHA256' });
    assert.equal(rsa.fingerprint, fp(certs.aRsa!));
    assert.equal(rsa.authorized, true, rsa.authorizationError);
    // TLS 1.2: by the suite's authentication.
    assert.equal((await probe(port, { servername: 'a.test', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' })).fingerprint, fp(certs.aEc!));
    assert.equal((await probe(port, { servername: 'a.test', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES256-GCM-SHA384' })).fingerprint, fp(certs.aRsa!));
  });

  test('b.test and a wildcard name get b’s certificate', async () => {
    assert.equal((await probe(port, { servername: 'b.test', ca: ca.cert })).fingerprint, fp(certs.b!));
    assert.equal((await probe(port, { servername: 'x.b.test', checkServerIdentity: () => undefined })).fingerprint, fp(certs.b!));
  });

  test('an unknown name and a client without SNI get the default server’s certificate', async () => {
    assert.equal((await probe(port, { servername: 'unknown.test' })).fingerprint, fp(certs.c!));
    const noSni = await probe(port, {});
    assert.equal(noSni.ok, true, noSni.error);
    assert.equal(noSni.fingerprint, fp(certs.c!));
  });

  test('the right virtual server answers on each name', async () => {
    for (const [name, body] of [['a.test', 'a'], ['b.test', 'b'], ['c.test', 'c']] as const) {
      const p = await probe(port, { servername: name, ca: ca.cert, rejectUnauthorized: true, send: `GET / HTTP/1.1\r\nHost: ${name}\r\nConnection: close\r\n\r\n` });
      assert.match(p.response ?? '', new RegExp(`\\r\\n\\r\\n${body}\\n$`));
    }
  });
});

describe('secure defaults (Mozilla intermediate)', () => {
  const good = ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-CHACHA20-POLY1305'];
  const bad = ['ECDHE-RSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA384', 'ECDHE-RSA-AES128-SHA256', 'AES128-GCM-SHA256', 'AES256-SHA', 'DHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES128-CCM8', 'ECDHE-ECDSA-ARIA128-GCM-SHA256'];

  test('TLS 1.2: the six ECDHE + AEAD suites are accepted', async () => {
    for (const cipher of good) {
      const p = await probe(port, { servername: 'a.test', maxVersion: 'TLSv1.2', ciphers: cipher });
      assert.equal(p.ok, true, `${cipher}: ${p.error}`);
      assert.equal(p.cipher, cipher);
    }
  });

  test('TLS 1.2: CBC, CCM8, ARIA, static-RSA and DHE suites are refused', async () => {
    for (const cipher of bad) {
      const p = await probe(port, { servername: 'a.test', maxVersion: 'TLSv1.2', ciphers: `${cipher}@SECLEVEL=0` });
      assert.equal(p.ok, false, `${cipher} was accepted`);
    }
  });

  test('TLS 1.0 and 1.1 are refused; TLS 1.3 is offered', async () => {
    for (const v of ['TLSv1', 'TLSv1.1'] as const) {
      const p = await probe(port, { servername: 'a.test', minVersion: v, maxVersion: v, ciphers: 'DEFAULT@SECLEVEL=0' });
      assert.equal(p.ok, false, v);
    }
    assert.equal((await probe(port, { servername: 'a.test' })).protocol, 'TLSv1.3');
  });

  test('no server cipher preference: the client’s order wins', async () => {
    const chachaFirst = await probe(port, { servername: 'b.test', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256' });
    assert.equal(chachaFirst.cipher, 'ECDHE-ECDSA-CHACHA20-POLY1305');
    const aesFirst = await probe(port, { servername: 'b.test', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305' });
    assert.equal(aesFirst.cipher, 'ECDHE-ECDSA-AES128-GCM-SHA256');
  });

  test('client-initiated renegotiation is refused', async () => {
    const result = await new Promise<string>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, servername: 'a.test', maxVersion: 'TLSv1.2', rejectUnauthorized: false }, () => {
        socket.renegotiate({ rejectUnauthorized: false }, (err) => {
          resolve(err ? `refused: ${err.message}` : 'renegotiated');
          socket.destroy();
        });
      });
      socket.on('error', (err) => resolve(`refused: ${err.message}`));
      setTimeout(() => resolve('no answer'), 3000).unref();
    });
    assert.match(result, /^refused|^no answer$/);
    assert.notEqual(result, 'renegotiated');
  });

  test('ALPN: h2 and http/1.1 are chosen; a client offering only protocols fulcrum does not speak is refused (as by nginx)', async () => {
    assert.equal((await probe(port, { servername: 'a.test', ALPNProtocols: ['h2', 'http/1.1'] })).alpn, 'h2');
    assert.equal((await probe(port, { servername: 'a.test', ALPNProtocols: ['http/1.1'] })).alpn, 'http/1.1');
    const spdy = await probe(port, { servername: 'a.test', ALPNProtocols: ['spdy/3.1'] });
    assert.equal(spdy.ok, false);
    assert.match(spdy.error ?? '', /application protocol|alpn|alert/i);
  });
});

describe("the seed's explicit ssl_* settings are honoured", () => {
  test('ssl_ciphers HIGH:!aNULL:!MD5 admits a CBC suite the default refuses', async () => {
    const cbc = 'ECDHE-RSA-AES128-SHA256';
    assert.equal((await probe(seedPort, { servername: 'a.test', maxVersion: 'TLSv1.2', ciphers: cbc })).cipher, cbc);
    assert.equal((await probe(port, { servername: 'a.test', maxVersion: 'TLSv1.2', ciphers: cbc })).ok, false);
  });

  test('ssl_prefer_server_ciphers on: the server’s order wins over the client’s', async () => {
    const p = await probe(seedPort, { servername: 'a.test', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384' });
    assert.equal(p.cipher, 'ECDHE-RSA-AES256-GCM-SHA384');
  });
});
