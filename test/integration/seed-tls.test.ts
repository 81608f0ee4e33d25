/**
 * The seed's TLS settings on the 443 server:
 *
 *   ssl_certificate .../fullchain.pem;  ssl_certificate_key .../privkey.pem;
 *   ssl_protocols TLSv1.2 TLSv1.3;      ssl_ciphers HIGH:!aNULL:!MD5;
 *   ssl_session_cache shared:SSL:10m;   ssl_session_timeout 1h;
 *
 * TLS 1.2 and 1.3 handshakes succeed with the configured certificate; TLS 1.0
 * and 1.1 are refused (and a control server shows the same client can speak
 * them, so the refusal is fulcrum's); a second connection resumes the session
 * of the first.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { rawRequest } from '../support/http-client.js';
import { listenOn } from '../support/ports.js';
import { SEED_SERVER_NAME, startSeed, type SeedEnv } from '../support/seed.js';

let env: SeedEnv;
/** A server that allows TLS 1.0 and 1.1, to show the client used below can negotiate them. */
let legacyServer: tls.Server;
let legacyPort: number;

/** OpenSSL 3 refuses TLS < 1.2 at its default security level; level 0 lets the client offer them. */
const LEGACY_CIPHERS = 'DEFAULT@SECLEVEL=0';

before(async () => {
  env = await startSeed();
  legacyServer = tls.createServer({ cert: env.cert.cert, key: env.cert.key, minVersion: 'TLSv1', maxVersion: 'TLSv1.3', ciphers: LEGACY_CIPHERS }, (socket) => {
    socket.on('error', () => {});
    socket.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  legacyPort = await listenOn(legacyServer);
});

after(async () => {
  legacyServer?.close();
  await env?.stop();
});

interface Handshake {
  ok: boolean;
  error?: string;
  protocol?: string | null;
  fingerprint?: string;
  authorized?: boolean;
  reused?: boolean;
  /** The last session the server gave (TLS 1.3 sends it after the handshake). */
  session?: Buffer;
  /** The HTTP response to a GET /api/hello. */
  response?: string;
}

/** Connects, sends one GET with Connection: close, reads to the end. */
function handshake(port: number, opts: tls.ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: env.cert.cert, servername: SEED_SERVER_NAME, ...opts });
    let session: Buffer | undefined;
    let result: Handshake | undefined;
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error('timed out')), 5000);
    socket.on('session', (s: Buffer) => { session = s; });
    socket.once('secureConnect', () => {
      result = {
        ok: true,
        protocol: socket.getProtocol(),
        fingerprint: socket.getPeerX509Certificate()?.fingerprint256,
        authorized: socket.authorized,
        reused: socket.isSessionReused(),
      };
      socket.write(`GET /api/hello HTTP/1.1\r\nHost: ${SEED_SERVER_NAME}\r\nConnection: close\r\n\r\n`);
    });
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', (err: Error) => {
      if (result === undefined) result = { ok: false, error: err.message };
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ ...(result ?? { ok: false, error: 'closed before the handshake' }), session, response: Buffer.concat(chunks).toString() });
    });
  });
}

function runOpenssl(args: string[]): Promise<{ code: number; output: string } | undefined> {
  return new Promise((resolve) => {
    const child = execFile('openssl', args, { timeout: 5000 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return resolve(undefined);
      resolve({ code: typeof err?.code === 'number' ? err.code : err ? 1 : 0, output: stdout + stderr });
    });
    child.stdin?.end();
  });
}

describe('seed TLS (ssl_protocols TLSv1.2 TLSv1.3)', () => {
  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    test(`${version} handshake succeeds with the configured certificate, and a request goes through`, async () => {
      const h = await handshake(env.httpsPort, { minVersion: version, maxVersion: version });
      assert.equal(h.ok, true, h.error);
      assert.equal(h.protocol, version);
      assert.equal(h.authorized, true, 'the certificate verifies against the test certificate as CA, for the seed\'s name');
      assert.equal(h.fingerprint, env.certFingerprint, 'the certificate served is the one in ssl_certificate');
      assert.match(h.response!, /^HTTP\/1\.1 200 [^\r]*\r\n[\s\S]*Hello from backend_\d\n$/);
    });
  }

  test('a client that closes before finishing its TLS handshake is closed at once, not held until the handshake timeout', async () => {
    // Node gave such a socket no end while half-open connections were allowed, so it stayed (fd, TLS state, a
    // worker_connections slot) until the 10 s handshake timeout; nginx closes at once. A FIN with no ClientHello,
    // and one after the first bytes of a ClientHello record.
    for (const sent of [Buffer.alloc(0), Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])]) {
      const socket = net.connect(env.httpsPort, '127.0.0.1');
      socket.on('error', () => undefined);
      await once(socket, 'connect');
      const start = performance.now();
      socket.end(sent);
      const closed = once(socket, 'close').then(() => performance.now() - start);
      const timer = setTimeout(() => socket.destroy(), 4000);
      const ms = await closed;
      clearTimeout(timer);
      assert.ok(ms < 2000, `closed by fulcrum after ${Math.round(ms)} ms (${sent.length} bytes sent before the FIN)`);
    }
  });

  test('a client that sends no SNI (connects by IP address) also gets the configured certificate', async () => {
    const h = await handshake(env.httpsPort, { servername: undefined, checkServerIdentity: () => undefined });
    assert.equal(h.ok, true, h.error);
    assert.equal(h.fingerprint, env.certFingerprint);
  });

  for (const version of ['TLSv1.1', 'TLSv1'] as const) {
    test(`${version} is refused`, async () => {
      const legacy = { minVersion: version, maxVersion: version, ciphers: LEGACY_CIPHERS, rejectUnauthorized: false };
      const control = await handshake(legacyPort, legacy);
      assert.equal(control.ok, true, `control: this client can speak ${version}: ${control.error}`);
      assert.equal(control.protocol, version);
      const h = await handshake(env.httpsPort, legacy);
      assert.equal(h.ok, false, `fulcrum accepted ${version} (${h.protocol})`);
      assert.match(h.error ?? '', /protocol|version|alert/i);
    });
  }

  test('openssl s_client: -tls1_2 connects, -tls1_1 and -tls1 do not', async (t) => {
    const common = ['s_client', '-connect', `127.0.0.1:${env.httpsPort}`, '-servername', SEED_SERVER_NAME, '-cipher', LEGACY_CIPHERS];
    const ok12 = await runOpenssl([...common, '-tls1_2', '-brief']);
    if (ok12 === undefined) return t.skip('openssl is not installed');
    assert.equal(ok12.code, 0, ok12.output);
    assert.match(ok12.output, /Protocol version: TLSv1\.2/);
    for (const flag of ['-tls1_1', '-tls1']) {
      const control = await runOpenssl(['s_client', '-connect', `127.0.0.1:${legacyPort}`, '-cipher', LEGACY_CIPHERS, flag, '-brief']);
      assert.equal(control!.code, 0, `control ${flag}: ${control!.output}`);
      const refused = await runOpenssl([...common, flag, '-brief']);
      assert.notEqual(refused!.code, 0, `${flag}: ${refused!.output}`);
    }
  });

  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    test(`${version} session resumption: a second connection resumes the first one's session`, async () => {
      const first = await handshake(env.httpsPort, { minVersion: version, maxVersion: version });
      assert.equal(first.ok, true, first.error);
      assert.equal(first.reused, false);
      assert.ok(first.session, 'the server gave the client a session to resume');
      const second = await handshake(env.httpsPort, { minVersion: version, maxVersion: version, session: first.session });
      assert.equal(second.ok, true, second.error);
      assert.equal(second.reused, true, 'isSessionReused()');
      assert.match(second.response!, /Hello from backend_\d/);
      // TLS 1.3: the resumed connection gives a fresh ticket, and that one resumes too. Clients use a TLS 1.3 ticket
      // once (RFC 8446 C.4; OpenSSL's client, so wrk, and browsers), so without it every other connection of theirs
      // was a full handshake (Node renews no ticket by itself). A TLS 1.2 client keeps resuming its session.
      if (version === 'TLSv1.3') assert.ok(second.session !== undefined && !second.session.equals(first.session), 'the resumed connection gave a new session');
      const third = await handshake(env.httpsPort, { minVersion: version, maxVersion: version, session: second.session ?? first.session });
      assert.equal(third.reused, true, 'the renewed session resumes');
      // A session from another server is not accepted (so `reused` above is not vacuous).
      const control = await handshake(legacyPort, { minVersion: version, maxVersion: version, session: first.session, rejectUnauthorized: false });
      assert.equal(control.ok, true, control.error);
      assert.equal(control.reused, false, 'another server does not resume this session');
    });
  }

  test('ALPN: a client offering http/1.1 gets it; one offering only http/1.0 (curl --http1.0) is served too, as by nginx', async () => {
    const h11 = await handshake(env.httpsPort, { ALPNProtocols: ['http/1.1'] });
    assert.equal(h11.ok, true, h11.error);
    assert.match(h11.response!, /^HTTP\/1\.1 200 /);
    const h10 = await handshake(env.httpsPort, { ALPNProtocols: ['http/1.0'] });
    assert.equal(h10.ok, true, h10.error);
    assert.match(h10.response!, /^HTTP\/1\.[01] 200 /);
  });

  test('over TLS, requests pipelined in one write are answered in order, and a request followed at once by close_notify is still answered', async () => {
    const get = (n: number, last: boolean) =>
      `GET /api/whoami?n=${n} HTTP/1.1\r\nHost: ${SEED_SERVER_NAME}\r\n${last ? 'Connection: close\r\n' : ''}\r\n`;
    const pipelined = await rawRequest(env.httpsPort, get(1, false) + get(2, false) + get(3, true), { tls: env.tls, timeoutMs: 2000 });
    assert.equal(pipelined.closed, true, 'the connection closes after the request that asked for it');
    assert.deepEqual(
      pipelined.responses.map((r) => [r.status, (JSON.parse(r.body.toString()) as { url: string }).url]),
      [[200, '/api/whoami?n=1'], [200, '/api/whoami?n=2'], [200, '/api/whoami?n=3']],
    );
    const halfClosed = await rawRequest(env.httpsPort, get(4, false), { tls: env.tls, timeoutMs: 2000, endAfterWrite: true });
    assert.equal(halfClosed.responses.length, 1, `one response: ${halfClosed.data.toString('latin1').slice(0, 200)}`);
    assert.equal(halfClosed.responses[0]!.status, 200);
    assert.equal((JSON.parse(halfClosed.responses[0]!.body.toString()) as { url: string }).url, '/api/whoami?n=4');
    assert.equal(halfClosed.closed, true, 'then fulcrum closes the connection');
  });

  test('a handshake that is not TLS (plain HTTP to the 443 port) does not disturb the server', async () => {
    const socket = net.connect({ host: '127.0.0.1', port: env.httpsPort });
    socket.on('error', () => {});
    socket.write('GET /api/hello HTTP/1.1\r\nHost: x\r\n\r\n');
    await once(socket, 'close');
    const h = await handshake(env.httpsPort);
    assert.equal(h.ok, true, h.error);
  });
});
