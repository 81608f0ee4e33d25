/**
 * OCSP stapling (`ssl_stapling on`): a test CA issues a certificate naming
 * an OCSP responder on loopback (a small HTTP server answering with real
 * responses made by `openssl ocsp -index`). fulcrum fetches and verifies the
 * response and staples it for clients that ask for the certificate status;
 * a server without ssl_stapling staples nothing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { makeCA, type CertFiles } from '../support/certs.js';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { freePorts, listenOn } from '../support/ports.js';
import { probe } from '../support/tls-probe.js';
import { tempDir } from '../support/tmp.js';

let fulcrum: FulcrumProcess;
let responder: http.Server;
let requests = 0;
let port: number;
let dir: string;
let ca: CertFiles;

function openssl(...args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A leaf certificate (with its issuer appended) whose AIA names the responder. */
function issue(name: string, serial: string, ocspPort: number): { chain: string; key: string } {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, `subjectAltName=DNS:${name}\nauthorityInfoAccess=OCSP;URI:http://127.0.0.1:${ocspPort}/\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`);
  openssl('x509', '-req', '-in', csr, '-CA', ca.certPath, '-CAkey', ca.keyPath, '-set_serial', `0x${serial}`, '-days', '2', '-extfile', ext, '-out', cert);
  const chain = join(dir, `${name}.chain.pem`);
  writeFileSync(chain, readFileSync(cert, 'utf8') + ca.cert);
  const end = openssl('x509', '-in', cert, '-noout', '-enddate').trim().split('=')[1]!;
  const d = new Date(end);
  const stamp = `${String(d.getUTCFullYear()).slice(2)}${[d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()].map((n) => String(n).padStart(2, '0')).join('')}Z`;
  writeFileSync(join(dir, 'index.txt'), `V\t${stamp}\t\t${serial.toUpperCase()}\tunknown\t/CN=${name}\n`, { flag: 'a' });
  return { chain, key };
}

before(async () => {
  dir = tempDir('fulcrum-ocsp-');
  ca = makeCA(dir, { commonName: 'OCSP Test CA' });
  writeFileSync(join(dir, 'index.txt'), '');
  // The responder: each POSTed request answered by `openssl ocsp -index` (good for the serials in index.txt).
  responder = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests++;
      const reqFile = join(dir, `req-${requests}.der`);
      const respFile = join(dir, `resp-${requests}.der`);
      writeFileSync(reqFile, Buffer.concat(chunks));
      openssl('ocsp', '-index', join(dir, 'index.txt'), '-rsigner', ca.certPath, '-rkey', ca.keyPath, '-CA', ca.certPath, '-reqin', reqFile, '-respout', respFile, '-nmin', '10');
      res.writeHead(200, { 'content-type': 'application/ocsp-response' });
      res.end(readFileSync(respFile));
    });
  });
  const ocspPort = await listenOn(responder);
  const stapled = issue('ocsp.test', '1a2b', ocspPort);
  const plain = issue('plain.test', '3c4d', ocspPort);
  [port] = (await freePorts(1)) as [number];
  fulcrum = await startFulcrum({
    dir,
    config: `
events {}
http {
  access_log off;
  server {
    listen 127.0.0.1:${port} ssl default_server;
    server_name ocsp.test;
    ssl_certificate ${stapled.chain};
    ssl_certificate_key ${stapled.key};
    ssl_stapling on;
    location / { return 200 "ok\\n"; }
  }
  server {
    listen 127.0.0.1:${port} ssl;
    server_name plain.test;
    ssl_certificate ${plain.chain};
    ssl_certificate_key ${plain.key};
    location / { return 200 "ok\\n"; }
  }
}
`,
  });
});

after(async () => {
  await fulcrum?.stop();
  responder?.close();
});

test('ssl_stapling: a verified OCSP response is stapled for clients that ask', { timeout: 20_000 }, async () => {
  const fetched = await fulcrum.waitForLog((e) => e.msg === 'OCSP response fetched for stapling', 10_000);
  assert.match(String(fetched.responder), /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const p = await probe(port, { servername: 'ocsp.test', ca: ca.cert, requestOCSP: true });
  assert.equal(p.ok, true, p.error);
  assert.ok(p.ocsp !== null && p.ocsp !== undefined && p.ocsp.length > 0, 'a response was stapled');
  const file = join(dir, 'stapled.der');
  writeFileSync(file, p.ocsp);
  const text = execFileSync('openssl', ['ocsp', '-respin', file, '-resp_text', '-noverify'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.match(text, /Cert Status: good/);
  assert.match(text, /Serial Number: 1A2B/i);
});

test('a server without ssl_stapling staples nothing; a client that does not ask gets nothing', async () => {
  const plain = await probe(port, { servername: 'plain.test', requestOCSP: true });
  assert.equal(plain.ok, true, plain.error);
  assert.ok(plain.ocsp === null || plain.ocsp === undefined || plain.ocsp.length === 0);
  const notAsked = await probe(port, { servername: 'ocsp.test' });
  assert.ok(notAsked.ocsp === null || notAsked.ocsp === undefined);
});
