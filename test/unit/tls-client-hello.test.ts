/**
 * The ClientHello peek (src/tls/client-hello.ts) on real ClientHellos from
 * Node's TLS client (OpenSSL), and the choice between an RSA and an ECDSA
 * certificate it makes for SNI servers with both.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { test } from 'node:test';
import { parseClientHello, preferredKeyType, type ClientHello, type ServerSuites } from '../../src/tls/client-hello.js';
import { serverSuites } from '../../src/tls/context.js';

/** The first bytes a TLS client sends with these options. */
async function helloBytes(opts: tls.ConnectionOptions): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const got = new Promise<Buffer>((resolve) => {
    server.once('connection', (socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (d: Buffer) => {
        chunks.push(d);
        const all = Buffer.concat(chunks);
        if (all.length >= 5 && all.length >= 5 + all.readUInt16BE(3)) {
          resolve(all);
          socket.destroy();
        }
      });
    });
  });
  const client = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
  client.on('error', () => undefined);
  const bytes = await got;
  client.destroy();
  server.close();
  return bytes;
}

async function hello(opts: tls.ConnectionOptions): Promise<ClientHello> {
  const parsed = parseClientHello(await helloBytes(opts));
  assert.equal(parsed.state, 'ok');
  return parsed as ClientHello;
}

const intermediate: ServerSuites = { tls13: true, suites: serverSuites(undefined), preferServer: false };

test('server name, ALPN, versions and signature algorithms are read', async () => {
  const h = await hello({ servername: 'a.example', ALPNProtocols: ['h2', 'http/1.1'] });
  assert.equal(h.servername, 'a.example');
  assert.deepEqual(h.alpn, ['h2', 'http/1.1']);
  assert.ok(h.versions.includes(0x0304));
  assert.ok(h.sigalgs.includes(0x0403), 'ecdsa_secp256r1_sha256');
  assert.ok(h.cipherSuites.includes(0x1301));
  const acme = await hello({ servername: 'b.example', ALPNProtocols: ['acme-tls/1'] });
  assert.deepEqual(acme.alpn, ['acme-tls/1']);
});

test('partial and non-TLS input', async () => {
  const bytes = await helloBytes({ servername: 'a.example' });
  assert.equal(parseClientHello(bytes.subarray(0, 3)).state, 'need-more');
  assert.equal(parseClientHello(bytes.subarray(0, bytes.length - 1)).state, 'need-more');
  assert.equal(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n\r\n')).state, 'invalid');
  const noSni = await hello({});
  assert.equal(noSni.servername, undefined);
});

test('the key type OpenSSL would pick: TLS 1.3 by signature scheme order', async () => {
  assert.equal(preferredKeyType(await hello({ servername: 'x' }), intermediate), 'ec');
  assert.equal(preferredKeyType(await hello({ servername: 'x', sigalgs: 'RSA-PSS+SHA256:ECDSA+SHA256' }), intermediate), 'rsa');
  assert.equal(preferredKeyType(await hello({ servername: 'x', sigalgs: 'ECDSA+SHA256:RSA-PSS+SHA256' }), intermediate), 'ec');
});

test('the key type OpenSSL would pick: TLS 1.2 by the suite the server would choose', async () => {
  const rsaOnly = await hello({ servername: 'x', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' });
  assert.equal(preferredKeyType(rsaOnly, intermediate), 'rsa');
  const rsaFirst = await hello({ servername: 'x', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256' });
  assert.equal(preferredKeyType(rsaFirst, intermediate), 'rsa', "the client's first suite the server allows");
  // An ECDSA suite the server does not allow (CBC) is skipped, as sslscan's probes need.
  const cbcFirst = await hello({ servername: 'x', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES256-GCM-SHA384' });
  assert.equal(preferredKeyType(cbcFirst, intermediate), 'rsa');
  // With ssl_prefer_server_ciphers on, the server's order decides.
  const seedStyle: ServerSuites = { tls13: true, suites: serverSuites('HIGH:!aNULL:!MD5'), preferServer: true };
  assert.equal(preferredKeyType(rsaFirst, seedStyle), 'ec', 'HIGH lists ECDSA suites before RSA ones');
  // A server without TLS 1.3 decides by suite even for a TLS 1.3 client.
  const modern = await hello({ servername: 'x', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256:TLS_AES_128_GCM_SHA256' });
  assert.equal(preferredKeyType(modern, { ...intermediate, tls13: false }), 'rsa');
});

test('serverSuites reads an OpenSSL cipher string with its authentication', () => {
  const high = serverSuites('HIGH:!aNULL:!MD5');
  assert.equal(high.get(0xc02b), 'ec');
  assert.equal(high.get(0xc02f), 'rsa');
  assert.equal(high.get(0x009c), 'rsa', 'AES128-GCM-SHA256 (RSA key exchange) authenticates with RSA');
  assert.deepEqual([...serverSuites(undefined).keys()].sort(), [0xc02b, 0xc02c, 0xc02f, 0xc030, 0xcca8, 0xcca9]);
});
