/**
 * Built-in ACME with the TLS-ALPN-01 challenge (no port 80 at all) against
 * pebble requiring External Account Binding, in a single process:
 *
 *  - an ECDSA and an RSA certificate are obtained for the same name and
 *    served side by side (the client's signature algorithms choose);
 *  - pebble's validation connections (ALPN "acme-tls/1") are answered with
 *    the challenge certificate, while ordinary HTTP/1.1 and HTTP/2 clients on
 *    the same listener are served as usual;
 *  - a server whose EAB key is wrong is refused by the CA: the failure is
 *    logged with the CA's reason and the name keeps its temporary
 *    self-signed certificate.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { join } from 'node:path';
import { spawnBackends, type TestBackends } from '../support/backends.js';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { startPebble, pebbleInstalled, type Pebble } from '../support/pebble.js';
import { freePorts } from '../support/ports.js';
import { isSelfSigned, probe } from '../support/tls-probe.js';
import { tempDir } from '../support/tmp.js';

const skip = pebbleInstalled() ? false : 'pebble is not installed (apt-get install pebble)';
const EAB_KID = 'kid-1';
const EAB_KEY = 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W';
const OTHER_KID = 'kid-2';
const OTHER_KEY = 'b10lLJs8l1GPIzsLP0s6pMt8O0XVGnfTaCeROxQM0BIt2XrJMDHJZBM5NuQmQJQH';
const WRONG_KEY = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

let backends: TestBackends;
let pebble: Pebble;
let fulcrum: FulcrumProcess;
let httpsPort: number;

before(async () => {
  if (skip) return;
  backends = await spawnBackends(1);
  const [unusedHttpPort, port] = (await freePorts(2)) as [number, number];
  httpsPort = port;
  pebble = await startPebble({ httpPort: unusedHttpPort, tlsPort: httpsPort, eabKeys: { [EAB_KID]: EAB_KEY, [OTHER_KID]: OTHER_KEY } });
  const dir = tempDir('fulcrum-acme-alpn-');
  fulcrum = await startFulcrum({
    dir,
    config: `
events {}
http {
  acme_storage ${join(dir, 'acme')};
  acme_directory ${pebble.directoryUrl};
  acme_ca_root ${pebble.caCertPath};
  acme_challenge tls-alpn-01;
  upstream app { server 127.0.0.1:${backends.ports[0]}; }
  server {
    listen 127.0.0.1:${httpsPort} ssl default_server;
    server_name alpn.test;
    acme on;
    acme_key_type ecdsa rsa;
    acme_eab_kid ${EAB_KID};
    acme_eab_hmac_key ${EAB_KEY};
    location / { proxy_pass http://app; }
  }
  server {
    listen 127.0.0.1:${httpsPort} ssl;
    server_name refused.test;
    acme on;
    acme_eab_kid ${OTHER_KID};
    acme_eab_hmac_key ${WRONG_KEY};
    acme_retry 1m;
    location / { return 200 "refused.test\\n"; }
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

test('ACME TLS-ALPN-01 with EAB: ECDSA and RSA certificates side by side; a refused account', { skip, timeout: 30_000 }, async (t) => {
  const started = Date.now();
  await fulcrum.waitForLog(() => fulcrum.logs.filter((e) => e.msg === 'acme certificate obtained').length >= 2, 15_000);
  const obtained = fulcrum.logs.filter((e) => e.msg === 'acme certificate obtained');
  t.diagnostic(`both certificates obtained ${Date.now() - started} ms after start (orders: ${obtained.map((e) => `${String(e.keyType)} ${String(e.ms)} ms`).join(', ')})`);
  assert.deepEqual(obtained.map((e) => e.keyType).sort(), ['ecdsa', 'rsa']);
  assert.ok(fulcrum.logs.some((e) => e.msg === 'acme TLS-ALPN-01 challenge answered' && e.name === 'alpn.test'), 'pebble validated over TLS-ALPN-01');
  assert.ok(fulcrum.logs.some((e) => e.msg === 'acme account ready' && e.eab === EAB_KID));
  const root = await pebble.issuingRoot();
  const byType = new Map(obtained.map((e) => [e.keyType as string, e.fingerprint as string]));

  await t.test('a client that prefers ECDSA gets the ECDSA certificate, an RSA-only client the RSA one, both valid', async () => {
    const wait = async (sigalgs: string, fingerprint: string) => {
      for (let i = 0; i < 100; i++) {
        const p = await probe(httpsPort, { servername: 'alpn.test', sigalgs, ca: root });
        if (p.fingerprint === fingerprint) return p;
        await new Promise((r) => setTimeout(r, 30));
      }
      assert.fail(`alpn.test never served ${fingerprint} to sigalgs ${sigalgs}`);
    };
    const ec = await wait('ECDSA+SHA256:ECDSA+SHA384', byType.get('ecdsa')!);
    assert.equal(ec.keyType, 'ec');
    assert.equal(ec.authorized, true, ec.authorizationError);
    const rsa = await wait('RSA-PSS+SHA256:RSA+SHA256', byType.get('rsa')!);
    assert.equal(rsa.keyType, 'rsa');
    assert.equal(rsa.authorized, true, rsa.authorizationError);
    // TLS 1.2 chooses by the cipher suite's authentication.
    const ec12 = await probe(httpsPort, { servername: 'alpn.test', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    assert.equal(ec12.keyType, 'ec');
    const rsa12 = await probe(httpsPort, { servername: 'alpn.test', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' });
    assert.equal(rsa12.keyType, 'rsa');
  });

  await t.test('ordinary HTTP/1.1 and HTTP/2 clients on the listener that answers TLS-ALPN-01 are served', async () => {
    const p = await probe(httpsPort, { servername: 'alpn.test', ca: root, rejectUnauthorized: true, send: 'GET /hello HTTP/1.1\r\nHost: alpn.test\r\nConnection: close\r\n\r\n' });
    assert.match(p.response ?? '', /^HTTP\/1\.1 200 [\s\S]*Hello from backend_1/);
    const session = http2.connect(`https://127.0.0.1:${httpsPort}`, { ca: root, servername: 'alpn.test' });
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const req = session.request({ ':path': '/hello', ':authority': 'alpn.test' });
        let data = '';
        req.setEncoding('utf8');
        req.on('data', (d: string) => (data += d));
        req.on('end', () => resolve(data));
        req.on('error', reject);
      });
      assert.equal(body, 'Hello from backend_1\n');
    } finally {
      session.close();
    }
  });

  await t.test('a validation connection for a name with no pending challenge is refused', async () => {
    const p = await probe(httpsPort, { servername: 'alpn.test', ALPNProtocols: ['acme-tls/1'] });
    assert.equal(p.ok, false);
  });

  await t.test('the CA refuses a wrong EAB key: logged, retried later, the temporary certificate stays', async () => {
    const failed = await fulcrum.waitForLog((e) => e.msg === 'acme order failed' && Array.isArray(e.names) && e.names[0] === 'refused.test', 5000);
    t.diagnostic(`CA's answer: ${String(failed.error)}`);
    assert.match(String(failed.error), /binding|eab|unauthorized|signature|hmac|jws/i);
    assert.ok((failed.retryInMs as number) >= 50_000, 'acme_retry 1m');
    const p = await probe(httpsPort, { servername: 'refused.test' });
    assert.ok(isSelfSigned(p.x509));
  });
});
