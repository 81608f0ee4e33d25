/**
 * TLS to upstreams (`proxy_pass https://` with nginx's proxy_ssl_*
 * directives), against real HTTPS backends that record the SNI name they
 * receive and the client certificate presented to them.
 *
 * Checked against nginx 1.22 (Debian) with the same backends: by default
 * nginx sends no SNI and does not verify (a self-signed backend passes);
 * `proxy_ssl_server_name on` sends proxy_ssl_name, or the proxy_pass host;
 * with `proxy_ssl_verify on` a backend of another CA or another name is a
 * failed attempt, answered 502 ("upstream SSL certificate verify error" /
 * "upstream SSL certificate does not match").
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { admin } from '../support/admin.js';
import { makeCA, makeSelfSignedCert, signCert, type CertFiles } from '../support/certs.js';
import { expectConfigError } from '../support/config-check.js';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { freePorts, listenOn } from '../support/ports.js';
import { request } from '../support/http-client.js';
import { tempDir } from '../support/tmp.js';

interface Seen {
  servername: string | false;
  clientCN: string;
  /** The TLS session was resumed (proxy_ssl_session_reuse). */
  reused: boolean;
}

/** An HTTPS backend that answers with the SNI name and client certificate it saw, and records them. */
async function httpsBackend(cert: CertFiles, name: string): Promise<{ server: https.Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = https.createServer({ cert: cert.cert, key: cert.key, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const socket = req.socket as TLSSocket;
    const peer = socket.getPeerCertificate();
    const entry: Seen = { servername: (socket as TLSSocket & { servername: string | false }).servername, clientCN: String(peer?.subject?.CN ?? ''), reused: socket.isSessionReused() };
    seen.push(entry);
    res.setHeader('content-type', 'application/json');
    // Every request on a new connection: the handshake (and its resumption) is what is observed.
    res.setHeader('connection', 'close');
    res.end(JSON.stringify({ backend: name, ...entry }));
  });
  const port = await listenOn(server);
  return { server, port, seen };
}

let dir: string;
let fulcrum: FulcrumProcess;
let port: number;
let adminPort: number;
let ca: CertFiles;
let good: Awaited<ReturnType<typeof httpsBackend>>;
let selfSigned: Awaited<ReturnType<typeof httpsBackend>>;

before(async () => {
  dir = tempDir('fulcrum-tls-upstream-');
  ca = makeCA(dir, { commonName: 'Backend CA' });
  const backendCert = signCert(ca, dir, { commonName: 'backend.test', altNames: ['backend.test', 'localhost', '127.0.0.1'] });
  const selfCert = makeSelfSignedCert(dir, { commonName: 'self.test', fileBase: 'self' });
  const clientCA = makeCA(dir, { commonName: 'Proxy Client CA', fileBase: 'client-ca' });
  const proxyClient = signCert(clientCA, dir, { commonName: 'fulcrum-proxy', fileBase: 'proxy-client' });
  good = await httpsBackend(backendCert, 'good');
  selfSigned = await httpsBackend(selfCert, 'self');
  [port, adminPort] = (await freePorts(2)) as [number, number];
  fulcrum = await startFulcrum({
    dir,
    config: `
events {}
admin { listen ${adminPort}; }
http {
  access_log off;
  upstream self_signed { server 127.0.0.1:${selfSigned.port}; }
  upstream verified { server 127.0.0.1:${good.port}; }
  upstream with_sni { server 127.0.0.1:${good.port}; }
  upstream wrong_ca { server 127.0.0.1:${selfSigned.port}; }
  upstream wrong_name { server 127.0.0.1:${good.port}; }
  upstream with_client_cert { server 127.0.0.1:${good.port}; }
  upstream no_reuse { server 127.0.0.1:${good.port}; }
  upstream failover {
    server 127.0.0.1:${selfSigned.port} max_fails=1 fail_timeout=30s;
    server 127.0.0.1:${good.port};
  }
  server {
    listen 127.0.0.1:${port};
    # The debug header names why an attempt failed.
    debug_header on;
    location /default/ { proxy_pass https://self_signed; }
    location /verify/ {
      proxy_pass https://verified;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate ${ca.certPath};
      proxy_ssl_name backend.test;
    }
    location /sni/ {
      proxy_pass https://with_sni;
      proxy_ssl_server_name on;
      proxy_ssl_name backend.test;
    }
    location /sni-host/ {
      proxy_pass https://localhost:${good.port};
      proxy_ssl_server_name on;
    }
    location /wrong-ca/ {
      proxy_pass https://wrong_ca;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate ${ca.certPath};
    }
    location /wrong-name/ {
      proxy_pass https://wrong_name;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate ${ca.certPath};
      proxy_ssl_name other.test;
    }
    location /client-cert/ {
      proxy_pass https://with_client_cert;
      proxy_ssl_certificate ${proxyClient.certPath};
      proxy_ssl_certificate_key ${proxyClient.keyPath};
    }
    location /no-reuse/ {
      proxy_pass https://no_reuse;
      proxy_ssl_session_reuse off;
    }
    location /failover/ {
      proxy_pass https://failover;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate ${ca.certPath};
      proxy_ssl_name backend.test;
      proxy_ssl_protocols TLSv1.2 TLSv1.3;
    }
  }
}
`,
  });
});

after(async () => {
  await fulcrum?.stop();
  good?.server.close();
  selfSigned?.server.close();
});

const get = async (path: string): Promise<{ status: number; json: (Seen & { backend: string }) | undefined; decision: string }> => {
  const r = await request({ port, path });
  return { status: r.status, json: r.status === 200 ? JSON.parse(r.body.toString()) : undefined, decision: String(r.headers['x-fulcrum-decision']) };
};

describe('TLS to upstreams', () => {
  test('nginx defaults: no verification (a self-signed backend passes) and no SNI', async () => {
    const r = await get('/default/x');
    assert.equal(r.status, 200);
    assert.equal(r.json!.backend, 'self');
    assert.equal(r.json!.servername, false);
    assert.equal(r.json!.clientCN, '');
  });

  test('proxy_ssl_verify on with the backend CA trusted passes; still no SNI without proxy_ssl_server_name', async () => {
    const r = await get('/verify/x');
    assert.equal(r.status, 200);
    assert.equal(r.json!.backend, 'good');
    assert.equal(r.json!.servername, false);
  });

  test('proxy_ssl_server_name on sends proxy_ssl_name, or else the proxy_pass host', async () => {
    assert.equal((await get('/sni/x')).json!.servername, 'backend.test');
    assert.equal((await get('/sni-host/x')).json!.servername, 'localhost');
  });

  test('a backend of another CA is a failed attempt: 502, counted against the server', async () => {
    const before = selfSigned.seen.length;
    const r = await get('/wrong-ca/x');
    assert.equal(r.status, 502);
    assert.equal(selfSigned.seen.length, before, 'no request may reach an unverified backend');
    const state = await admin(adminPort, 'GET', '/api/upstreams/wrong_ca');
    const server = state.body.servers[0];
    assert.ok(server.failures >= 1, JSON.stringify(server));
    assert.match(r.decision, /upstream SSL certificate verify error: \(self-signed certificate\)/);
  });

  test('a certificate for another name is a failed attempt: 502', async () => {
    const r = await get('/wrong-name/x');
    assert.equal(r.status, 502);
    assert.match(r.decision, /upstream SSL certificate does not match "other.test"/);
  });

  test('an unverifiable server is skipped for the next one and marked failed (passive health)', async () => {
    const r = await get('/failover/x');
    assert.equal(r.status, 200);
    assert.equal(r.json!.backend, 'good');
    const state = await admin(adminPort, 'GET', '/api/upstreams/failover');
    const bad = state.body.servers.find((s: { address: string }) => s.address.endsWith(`:${selfSigned.port}`));
    assert.notEqual(bad.state, 'up', JSON.stringify(bad));
    // Marked failed: the next requests go to the good server without trying the bad one.
    const seenBefore = good.seen.length;
    for (let i = 0; i < 3; i++) assert.equal((await get('/failover/x')).json!.backend, 'good');
    assert.equal(good.seen.length, seenBefore + 3);
  });

  test('proxy_ssl_certificate presents a client certificate to the backend', async () => {
    const r = await get('/client-cert/x');
    assert.equal(r.status, 200);
    assert.equal(r.json!.clientCN, 'fulcrum-proxy');
    assert.equal((await get('/default/x')).json!.clientCN, '');
  });
});

describe('proxy_ssl_session_reuse', () => {
  test('on (nginx default): the next connection resumes the session; off: never', async () => {
    await get('/verify/x');
    assert.equal((await get('/verify/x')).json!.reused, true);
    await get('/no-reuse/x');
    assert.equal((await get('/no-reuse/x')).json!.reused, false);
  });
});

describe('proxy_ssl_* configuration errors', () => {
  test('one upstream with different proxy_ssl_* settings in two locations', async () => {
    await expectConfigError(
      dir,
      'mixed-settings',
      `events {}
http {
  upstream b { server 127.0.0.1:9; }
  server {
    listen 127.0.0.1:9;
    location /a/ { proxy_pass https://b; }
    location /b/ { proxy_pass https://b; proxy_ssl_server_name on; }
  }
}
`,
      { line: 7, message: /upstream "b" is used with different proxy_ssl_\* settings/ },
    );
  });

  test('proxy_ssl_verify without a trusted certificate, as nginx', async () => {
    await expectConfigError(
      dir,
      'verify-without-ca',
      `events {}
http {
  server {
    listen 127.0.0.1:9;
    proxy_ssl_verify on;
    location / { proxy_pass https://127.0.0.1:9; }
  }
}
`,
      { message: /no "proxy_ssl_trusted_certificate" for "proxy_ssl_verify"/ },
    );
  });

  test('invalid values', async () => {
    await expectConfigError(dir, 'bad-flag', `events {}\nhttp {\n  proxy_ssl_server_name yes;\n}\n`, { line: 3, message: /must be "on" or "off"/ });
    await expectConfigError(dir, 'bad-protocol', `events {}\nhttp {\n  proxy_ssl_protocols TLSv9;\n}\n`, { line: 3, message: /invalid value "TLSv9"/ });
  });
});
