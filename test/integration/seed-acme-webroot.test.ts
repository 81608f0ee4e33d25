/**
 * The seed's ACME webroot: `location /.well-known/acme-challenge/ { allow all;
 * root /var/www/certbot; }` on port 80, shared with certbot. A token certbot
 * writes is served as is; nothing outside the webroot can be read, however
 * the path is spelled (dot segments, percent-encoding, double encoding,
 * backslashes, overlong UTF-8, NUL...).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rawRequest, type ParsedRawResponse } from '../support/http-client.js';
import { ACME_PREFIX, SEED_SERVER_NAME, startSeed, type SeedEnv } from '../support/seed.js';

let env: SeedEnv;
const TOKEN = 'Xk3_-9aZqW0rT5yU7iO1pA2sD4fG6hJ8';
const TOKEN_BODY = `${TOKEN}.thumbprint-of-the-account-key`;
/** Secrets next to the webroot; the TLS private key counts as one too. */
const secrets: Array<{ label: string; path: string; content: string }> = [];

before(async () => {
  env = await startSeed();
  writeFileSync(join(env.webroot, '.well-known', 'acme-challenge', TOKEN), TOKEN_BODY);
  // dir/www/certbot is the webroot: dir/www/secret.txt is its sibling, dir/secret.txt one level up.
  const www = join(env.webroot, '..');
  const add = (label: string, path: string, content: string) => {
    writeFileSync(path, content);
    secrets.push({ label, path, content });
  };
  add('sibling of the webroot', join(www, 'secret.txt'), 'SIBLING-SECRET-7f3a9c\n');
  add('two levels up', join(env.dir, 'secret.txt'), 'TOP-SECRET-d41d8c\n');
  add('webroot, outside the ACME location', join(env.webroot, 'secret.txt'), 'WEBROOT-SECRET-e3b0c4\n');
  mkdirSync(join(env.webroot, '.well-known', 'acme-challenge', 'sub'), { recursive: true });
  secrets.push({ label: 'TLS private key', path: env.cert.keyPath, content: readFileSync(env.cert.keyPath, 'utf8') });
});

after(async () => {
  await env?.stop();
});

async function get80(target: string, method = 'GET'): Promise<ParsedRawResponse> {
  const bytes = `${method} ${target} HTTP/1.1\r\nHost: ${SEED_SERVER_NAME}\r\nConnection: close\r\n\r\n`;
  const exchange = await rawRequest(env.httpPort, bytes, { methods: [method], timeoutMs: 2000 });
  const response = exchange.responses[0];
  assert.ok(response, `no HTTP response to ${target}: ${JSON.stringify(exchange.data.toString('latin1').slice(0, 200))} ${exchange.errorCode ?? ''}`);
  return response;
}

describe('seed ACME webroot on port 80', () => {
  test('a token in the webroot is served at /.well-known/acme-challenge/TOKEN', async () => {
    const r = await get80(ACME_PREFIX + TOKEN);
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), TOKEN_BODY);
    assert.equal(r.headers['location'], undefined, 'not redirected');
  });

  test('a token written while running (as certbot does) is served at once; a removed one is 404', async () => {
    const late = 'late-token_' + Date.now();
    const missing = await get80(ACME_PREFIX + late);
    assert.equal(missing.status, 404, 'not there yet: 404, not a redirect');
    writeFileSync(join(env.webroot, '.well-known', 'acme-challenge', late), 'late-body');
    const found = await get80(ACME_PREFIX + late);
    assert.equal(found.status, 200);
    assert.equal(found.body.toString(), 'late-body');
  });

  test('spellings that stay inside the webroot reach the token', async () => {
    for (const target of [
      `${ACME_PREFIX}${TOKEN}?query=ignored`,
      `${ACME_PREFIX}sub/../${TOKEN}`,
      `${ACME_PREFIX}./${TOKEN}`,
      `${ACME_PREFIX}%58k3_-9aZqW0rT5yU7iO1pA2sD4fG6hJ8`,
      `/.well-known/./acme-challenge/${TOKEN}`,
    ]) {
      const r = await get80(target);
      assert.equal(r.status, 200, target);
      assert.equal(r.body.toString(), TOKEN_BODY, target);
    }
  });

  test('HEAD on a token: 200, its length, no body', async () => {
    const r = await get80(ACME_PREFIX + TOKEN, 'HEAD');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], String(Buffer.byteLength(TOKEN_BODY)));
    assert.equal(r.body.length, 0);
  });

  test('the challenge directory itself is never listed', async () => {
    for (const target of [ACME_PREFIX, `${ACME_PREFIX}sub/`, `${ACME_PREFIX}sub`]) {
      const r = await get80(target);
      assert.notEqual(r.status, 200, target);
      assert.ok(!r.body.toString().includes(TOKEN), `${target} does not name the token`);
    }
  });

  test('no spelling of ".." reads a file outside the webroot (or outside the ACME location)', async () => {
    const dotdots = ['..', '%2e%2e', '%2E%2E', '.%2e', '%2e.', '%252e%252e', '%c0%ae%c0%ae', '%u002e%u002e', '..%00', '....', '..;', '%2e%2e%00'];
    const seps = ['/', '%2f', '%2F', '%5c', '%5C', '\\', '//', '/./', '%252f', '%c0%af'];
    const files = [
      'secret.txt',
      'www/secret.txt',
      `letsencrypt/live/${SEED_SERVER_NAME}/fullchain.key.pem`,
    ];
    const targets = new Set<string>();
    for (const dd of dotdots) {
      for (const sep of seps) {
        for (const file of files) {
          for (let depth = 1; depth <= 6; depth++) {
            targets.add(ACME_PREFIX + `${dd}${sep}`.repeat(depth) + file.replaceAll('/', sep === '//' || sep === '/./' ? '/' : sep));
            if (depth === 4) targets.add(ACME_PREFIX + `${dd}${sep}`.repeat(depth) + file);
          }
        }
      }
    }
    // Other shapes: a leading double slash, an absolute path after the prefix, absolute-form targets.
    for (const file of files) {
      targets.add(`//.well-known/acme-challenge/../../../../${file}`);
      targets.add(`${ACME_PREFIX}/../../../../${file}`);
      targets.add(`${ACME_PREFIX}${env.dir}/${file}`);
      targets.add(`${ACME_PREFIX}..%2F..%2F..%2F..%2F${file.replaceAll('/', '%2F')}`);
      targets.add(`${ACME_PREFIX}%2F..%2F..%2F..%2F..%2F${file.replaceAll('/', '%2F')}`);
      targets.add(`http://${SEED_SERVER_NAME}${ACME_PREFIX}../../../../${file}`);
      targets.add(`/.well-known/acme-challenge%2F..%2F..%2F..%2F..%2F${file}`);
      targets.add(`${ACME_PREFIX}${TOKEN}/../../../../../${file}`);
    }
    targets.add(`${ACME_PREFIX}../../secret.txt`); // the webroot's own secret.txt (outside the ACME location)
    targets.add('/secret.txt');
    targets.add('/www/secret.txt');

    // Control: the same detection on a file that may be read (a copy of a secret inside the ACME directory) must find it.
    const canary = secrets[0]!;
    writeFileSync(join(env.webroot, '.well-known', 'acme-challenge', 'canary'), canary.content);
    targets.add(`${ACME_PREFIX}canary`);

    const list = [...targets];
    const leaks: string[] = [];
    const statuses = new Map<number, number>();
    const BATCH = 24;
    for (let i = 0; i < list.length; i += BATCH) {
      const batch = list.slice(i, i + BATCH);
      const results = await Promise.all(batch.map(async (target) => {
        const bytes = `GET ${target} HTTP/1.1\r\nHost: ${SEED_SERVER_NAME}\r\nConnection: close\r\n\r\n`;
        return { target, exchange: await rawRequest(env.httpPort, bytes, { timeoutMs: 2000 }) };
      }));
      for (const { target, exchange } of results) {
        const text = exchange.data.toString('latin1');
        const status = exchange.responses[0]?.status ?? 0;
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        for (const secret of secrets) {
          const probe = secret.content.trim().split('\n')[secret.content.includes('PRIVATE KEY') ? 1 : 0]!;
          if (text.includes(probe)) leaks.push(`${target} -> ${status}: ${secret.label}`);
        }
        if (status === 200) leaks.push(`${target} -> 200 (${exchange.responses[0]!.body.length} bytes)`);
      }
    }
    assert.deepEqual(leaks, [`${ACME_PREFIX}canary -> 200: ${canary.label}`, `${ACME_PREFIX}canary -> 200 (${canary.content.length} bytes)`],
      `only the control reads something (of ${list.length} requests)`);
    assert.ok(list.length > 1000, `${list.length} spellings tried`);
    // Every one was answered (no hang, no silent close): 301 (left the ACME location), 400, 403 or 404; 200 only for the control.
    assert.equal(statuses.get(200), 1);
    const unexpected = [...statuses.keys()].filter((s) => ![200, 301, 400, 403, 404].includes(s));
    assert.deepEqual(unexpected, [], `statuses seen: ${JSON.stringify(Object.fromEntries(statuses))}`);
  });
});
