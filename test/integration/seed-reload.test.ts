/**
 * Reload (SIGHUP), which the seed's nginx container does every 6 hours so
 * that certificates certbot renewed are picked up:
 *
 * - under steady traffic, several reloads with changed configurations lose
 *   no request, and requests started after each reload see the new config;
 * - a broken configuration is reported (`reload failed`, naming file:line)
 *   and the old one keeps serving;
 * - a renewed certificate (files overwritten in place) is served after SIGHUP;
 *   unreadable certificate files make the reload fail, keeping the old one.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { spawnBackends, type TestBackends } from '../support/backends.js';
import { keepAliveAgent, request } from '../support/http-client.js';
import { fingerprint, lineOf, makeSeedCert, replaceOnce, SEED_SERVER_NAME, seedConfig, startSeed, type SeedConfigParams, type SeedEnv } from '../support/seed.js';
import { sleep } from '../support/wait.js';

let backends: TestBackends;
let env: SeedEnv;

before(async () => {
  backends = await spawnBackends(4);
  env = await startSeed({ backends, upstreamPorts: backends.ports.slice(0, 3) });
});

after(async () => {
  await env?.stop();
  await backends?.stop();
});

interface Sample {
  client: string;
  start: number;
  end: number;
  status: number;
  backend?: string;
  location?: string;
  error?: string;
}

/** The seed copy with the given upstream ports, and optionally a changed redirect (`return 301 https://$host:PORT$request_uri`). */
function configWith(upstreamPorts: number[], redirectPort?: number): string {
  const params: SeedConfigParams = { ...env.params, upstreamPorts };
  const text = seedConfig(params);
  if (redirectPort === undefined) return text;
  return replaceOnce(text, 'return 301 https://$host$request_uri;', `return 301 https://$host:${redirectPort}$request_uri;`);
}

/** The certificate a new TLS connection to the 443 server gets. */
function servedFingerprint(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: env.httpsPort, servername: SEED_SERVER_NAME, rejectUnauthorized: false }, () => {
      const fp = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
      socket.end();
      resolve(fp);
    });
    socket.on('error', reject);
  });
}

describe('seed reload (SIGHUP) under traffic', () => {
  test('five config changes (one of them broken) under steady traffic: no failed request, each change visible at once', async (t) => {
    const ports = backends.ports;
    const samples: Sample[] = [];
    let running = true;
    const deadline = performance.now() + 15_000;
    const loop = async (client: string, once: () => Promise<Omit<Sample, 'client' | 'start' | 'end'>>) => {
      for (let n = 0; running && n < 4000 && performance.now() < deadline; n++) {
        const start = performance.now();
        let result: Omit<Sample, 'client' | 'start' | 'end'>;
        try {
          result = await once();
        } catch (err) {
          result = { status: 0, error: (err as Error).message };
        }
        samples.push({ client, start, end: performance.now(), ...result });
      }
    };
    const agents = [0, 1, 2, 3].map(() => keepAliveAgent({ tls: true, maxSockets: 1 }));
    const slowAgent = keepAliveAgent({ tls: true, maxSockets: 1 });
    const httpAgent = keepAliveAgent({ maxSockets: 1 });
    const httpsGet = (path: string, agent: ReturnType<typeof keepAliveAgent> | false) => async () => {
      const r = await env.https(path, { agent, headers: { host: SEED_SERVER_NAME }, timeoutMs: 5000 });
      return { status: r.status, backend: String(r.headers['x-backend']) };
    };
    const clients = [
      ...agents.map((agent, i) => loop(`keep-alive ${i}`, httpsGet('/api/hello', agent))),
      loop('new connections', httpsGet('/api/hello', false)),
      loop('slow', httpsGet('/api/slow?ms=300', slowAgent)),
      loop('port 80', async () => {
        const r = await request({ port: env.httpPort, path: '/p?q=1', agent: httpAgent, headers: { host: SEED_SERVER_NAME }, timeoutMs: 5000 });
        return { status: r.status, location: String(r.headers.location) };
      }),
    ];

    const orig = `https://${SEED_SERVER_NAME}/p?q=1`;
    const withPort = `https://${SEED_SERVER_NAME}:${env.httpsPort}/p?q=1`;
    const names = (idx: number[]) => idx.map((i) => `backend_${i + 1}`).sort();
    /** What requests in each generation must see. */
    const generations: Array<{ label: string; config?: string; broken?: boolean; backends: string[]; location: string; from: number; to: number }> = [
      { label: 'the seed copy', backends: names([0, 1, 2]), location: orig, from: 0, to: 0 },
      { label: 'a 4th backend', config: configWith([ports[0]!, ports[1]!, ports[2]!, ports[3]!]), backends: names([0, 1, 2, 3]), location: orig, from: 0, to: 0 },
      { label: 'another redirect', config: configWith([ports[0]!, ports[1]!, ports[2]!, ports[3]!], env.httpsPort), backends: names([0, 1, 2, 3]), location: withPort, from: 0, to: 0 },
      { label: 'backend_1 removed', config: configWith([ports[1]!, ports[2]!, ports[3]!], env.httpsPort), backends: names([1, 2, 3]), location: withPort, from: 0, to: 0 },
      { label: 'a broken config', broken: true, backends: names([1, 2, 3]), location: withPort, from: 0, to: 0 },
      { label: 'the seed copy again', config: configWith([ports[0]!, ports[1]!, ports[2]!]), backends: names([0, 1, 2]), location: orig, from: 0, to: 0 },
    ];
    const brokenText = replaceOnce(configWith([ports[0]!]), 'proxy_read_timeout 300;', 'proxy_read_timeout 300;\n            proxy_pass_header_typo X-Foo;');
    const brokenLine = lineOf(brokenText, 'proxy_pass_header_typo');
    let brokenError = '';
    try {
      await sleep(700);
      generations[0]!.from = 0;
      for (let g = 1; g < generations.length; g++) {
        const gen = generations[g]!;
        generations[g - 1]!.to = performance.now();
        if (gen.broken) {
          await assert.rejects(env.fulcrum.reload(brokenText), (err: Error) => {
            brokenError = err.message;
            return true;
          });
        } else {
          await env.fulcrum.reload(gen.config);
        }
        gen.from = performance.now();
        await sleep(700);
      }
      generations[generations.length - 1]!.to = performance.now();
    } finally {
      running = false;
      await Promise.all(clients);
      for (const agent of [...agents, slowAgent, httpAgent]) agent.destroy();
    }

    const failed = samples.filter((s) => s.status !== (s.client === 'port 80' ? 301 : 200));
    assert.deepEqual(failed, [], `${failed.length} failed requests of ${samples.length}`);
    assert.ok(samples.length > 300, `${samples.length} requests`);
    for (const gen of generations) {
      const inside = samples.filter((s) => s.start > gen.from && s.end < gen.to);
      const seen = [...new Set(inside.filter((s) => s.backend !== undefined).map((s) => s.backend!))].sort();
      const locations = [...new Set(inside.filter((s) => s.location !== undefined).map((s) => s.location!))];
      assert.ok(inside.length > 30, `${gen.label}: ${inside.length} requests`);
      assert.deepEqual(seen, gen.backends, `${gen.label}: backends that answered requests started after the reload`);
      assert.deepEqual(locations, [gen.location], `${gen.label}: redirect Location`);
    }
    assert.match(brokenError, new RegExp(`${env.fulcrum.configPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${brokenLine}:\\d+`), 'the error names file:line');
    assert.match(brokenError, /proxy_pass_header_typo/, 'and the directive');
    // Slow requests were in flight across reloads, and finished (with 200, checked above).
    const spanning = samples.filter((s) => s.client === 'slow' && generations.some((g, i) => i > 0 && s.start < g.from && s.end > generations[i - 1]!.to));
    assert.ok(spanning.length >= 3, `${spanning.length} slow requests spanned a reload`);
    const reloads = env.fulcrum.logs.filter((e) => e.msg === 'reloaded' || e.msg === 'reload failed').map((e) => e.msg);
    assert.deepEqual(reloads, ['reloaded', 'reloaded', 'reloaded', 'reload failed', 'reloaded']);
    t.diagnostic(`${samples.length} requests, ${samples.filter((s) => s.client === 'slow').length} slow ones; broken reload: ${brokenError}`);
  });

  test('a renewed certificate (files overwritten in place, as certbot does) is served after SIGHUP', async () => {
    const before = await servedFingerprint();
    assert.equal(before, env.certFingerprint);
    const agent = keepAliveAgent({ tls: true, maxSockets: 1 });
    try {
      // A connection opened before the renewal keeps working.
      assert.equal((await env.https('/api/hello', { agent })).status, 200);
      const renewed = makeSeedCert(join(env.cert.certPath, '..'));
      assert.equal(renewed.certPath, env.cert.certPath);
      const renewedFingerprint = fingerprint(renewed.cert);
      assert.notEqual(renewedFingerprint, before);
      assert.equal(await servedFingerprint(), before, 'not before the reload');
      await env.fulcrum.reload();
      assert.equal(await servedFingerprint(), renewedFingerprint, 'new connections get the renewed certificate');
      assert.equal((await env.https('/api/hello', { agent })).status, 200, 'the old connection still works');
      const r = await request({ port: env.httpsPort, path: '/api/hello', tls: { ca: renewed.cert, servername: SEED_SERVER_NAME } });
      assert.equal(r.status, 200, 'and the renewed certificate verifies');
    } finally {
      agent.destroy();
    }
  });

  test('an unreadable certificate file fails the reload; the old certificate keeps being served', async () => {
    const current = await servedFingerprint();
    const garbage = join(env.dir, 'truncated.cert.pem');
    writeFileSync(garbage, '-----BEGIN CERTIFICATE-----\nMIIB\n');
    const text = replaceOnce(seedConfig(env.params), `ssl_certificate ${env.params.certPath};`, `ssl_certificate ${garbage};`);
    await assert.rejects(env.fulcrum.reload(text), /reload failed/);
    assert.equal(await servedFingerprint(), current);
    // The certificate in the files now (renewed by the test above, if it ran) is the one that verifies.
    const trusted = { ca: readFileSync(env.cert.certPath, 'utf8'), servername: SEED_SERVER_NAME };
    assert.equal((await request({ port: env.httpsPort, path: '/api/hello', tls: trusted })).status, 200);
    // And a good reload afterwards still works.
    await env.fulcrum.reload(seedConfig(env.params));
    assert.equal((await request({ port: env.httpsPort, path: '/api/hello', tls: trusted })).status, 200);
  });
});
