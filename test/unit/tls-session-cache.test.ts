/**
 * The session-ID cache (src/tls/context.ts, ssl_session_cache) on a real
 * tls.Server: a TLS 1.2 session is kept and resumes by its ID; the TLS 1.3
 * sessions OpenSSL reports (two per connection, never findable by ID) are not
 * kept, while TLS 1.3 clients still resume with their tickets.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:crypto';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { makeSelfSignedCert, type CertFiles } from '../support/certs.js';
import { tempDir } from '../support/tmp.js';
import { probe } from '../support/tls-probe.js';
import { SessionCache, sessionProtocolVersion } from '../../src/tls/context.js';

let cert: CertFiles;

before(() => {
  cert = makeSelfSignedCert(tempDir('fulcrum-session-cache-'));
});

async function serve(tickets: boolean): Promise<{ port: number; cache: SessionCache; seen: Buffer[]; close(): Promise<void> }> {
  const server = tls.createServer({
    key: cert.key,
    cert: cert.cert,
    minVersion: 'TLSv1.2',
    secureOptions: tickets ? 0 : constants.SSL_OP_NO_TICKET,
  }, (socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'));
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const seen: Buffer[] = [];
  server.on('newSession', (_id: Buffer, data: Buffer) => seen.push(data));
  const cache = new SessionCache(100, 60_000);
  cache.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    cache,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

const servers: { close(): Promise<void> }[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

test('TLS 1.2 without tickets: the session is kept and the next connection resumes it by ID', async () => {
  const s = await serve(false);
  servers.push(s);
  const v12 = { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', send: 'GET / HTTP/1.1\r\n\r\n' } as const;
  const first = await probe(s.port, v12);
  assert.equal(first.ok, true, first.error);
  assert.equal(s.cache.size, 1);
  assert.equal(sessionProtocolVersion(s.seen[0]!), 0x0303);
  const second = await probe(s.port, { ...v12, session: first.session });
  assert.equal(second.reused, true, 'resumed from the cache');
});

test('TLS 1.3: the sessions OpenSSL reports are not kept, and clients still resume with their tickets', async () => {
  const s = await serve(true);
  servers.push(s);
  const v13 = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', send: 'GET / HTTP/1.1\r\n\r\n' } as const;
  let session: Buffer | undefined;
  for (let i = 0; i < 3; i++) {
    const p = await probe(s.port, v13);
    assert.equal(p.ok, true, p.error);
    session = p.session;
  }
  const resumed = await probe(s.port, { ...v13, session });
  assert.equal(resumed.reused, true, 'a ticket resumes');
  assert.ok(s.seen.length >= 3, `OpenSSL reported ${s.seen.length} sessions`);
  assert.ok(s.seen.every((d) => sessionProtocolVersion(d) === 0x0304));
  assert.equal(s.cache.size, 0, 'none kept');
});

test('sessionProtocolVersion: -1 for bytes that are not a session', () => {
  assert.equal(sessionProtocolVersion(Buffer.alloc(0)), -1);
  assert.equal(sessionProtocolVersion(Buffer.from('308100020102020203040000', 'hex')), -1, 'another structure version');
  assert.equal(sessionProtocolVersion(Buffer.from('3081a0020101020203040402', 'hex')), 0x0304);
});
