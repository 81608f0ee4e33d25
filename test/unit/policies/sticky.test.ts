/** sticky cookie: bound requests go to their server (even draining), others to the method; signed values that reveal no address. */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { RoundRobinPolicy } from '../../../src/balancer/policies/round-robin.js';
import { StickyCookie, StickyPolicy, stickyKey, SECRET_ENV } from '../../../src/balancer/policies/sticky.js';
import { none, pool, req, retrySequence, snapshot, triedOf, vars } from './fixtures.js';

const KEY = Buffer.alloc(32, 7);
const config = { cookie: 'srv_id', httponly: true, secure: false } as const;

function setup(n = 3) {
  const servers = pool(n, { addresses: Array.from({ length: n }, (_, i) => `10.0.0.${i + 1}:8080`) });
  const cookie = new StickyCookie(config, 'app', KEY);
  const snap = snapshot(servers);
  const policy = new StickyPolicy(snap, new RoundRobinPolicy(snap), cookie);
  const withCookie = (s: (typeof servers)[number]) => req(vars({ cookie: `other=1; srv_id=${cookie.token(s)}; x=2` }));
  return { servers, cookie, policy, withCookie };
}

test('the value is a 128-bit HMAC of upstream and address: stable, unguessable without the key, no address in it', () => {
  const { servers, cookie } = setup();
  const token = cookie.token(servers[1]!);
  assert.match(token, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(token, createHmac('sha256', KEY).update('app\u000010.0.0.2:8080').digest('base64url').slice(0, 22));
  assert.ok(!token.includes('10') || !Buffer.from(token, 'base64url').toString('latin1').includes('10.0.0.2'));
  assert.notEqual(new StickyCookie(config, 'app', Buffer.alloc(32, 8)).token(servers[1]!), token);
  assert.equal(new Set(servers.map((s) => cookie.token(s))).size, 3);
});

test('100 requests with the cookie all go to its server; without one the method decides', () => {
  const { servers, policy, withCookie } = setup();
  const bound = withCookie(servers[2]!);
  for (let i = 0; i < 100; i++) assert.equal(policy.pick(bound, none), servers[2]);
  assert.deepEqual([0, 1, 2].map(() => policy.pick(req(), none)?.address), ['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080']);
  assert.equal(policy.pick(req(vars({ cookie: 'srv_id=forged-value-000000000' })), none)?.address, '10.0.0.1:8080');
});

test('a draining server keeps its sessions and gets no new ones; a down, failed or unhealthy one loses them', () => {
  const { servers, policy, withCookie } = setup();
  servers[0]!.drain = true;
  assert.equal(policy.pick(withCookie(servers[0]!), none), servers[0]);
  for (let i = 0; i < 10; i++) assert.notEqual(policy.pick(req(), none), servers[0]);
  servers[0]!.drain = false;
  servers[0]!.healthy = false;
  assert.notEqual(policy.pick(withCookie(servers[0]!), none), servers[0]);
  servers[0]!.healthy = true;
  servers[0]!.configDown = true;
  assert.notEqual(policy.pick(withCookie(servers[0]!), none), servers[0]);
});

test('a retry after the bound server failed goes elsewhere and never repeats', () => {
  const { servers, policy, withCookie } = setup();
  const r = withCookie(servers[1]!);
  assert.equal(policy.pick(r, none), servers[1]);
  assert.notEqual(policy.pick(r, triedOf([servers[1]!])), servers[1]);
  assert.deepEqual(retrySequence(policy, r).length, 3);
  assert.equal(retrySequence(policy, r)[0], '10.0.0.2:8080');
});

test('Set-Cookie only when the request does not already name the server, with the attributes', () => {
  const { servers, withCookie } = setup();
  const cookie = new StickyCookie({ cookie: 'srv_id', expires: 3_600_000, domain: '.example.org', path: '/app', httponly: true, secure: true, samesite: 'lax' }, 'app', KEY);
  const added: [string, string][] = [];
  const headers = { add: (n: string, v: string) => void added.push([n, v]) };
  cookie.addSetCookie(headers, req().vars, servers[0]!);
  assert.equal(added.length, 1);
  assert.equal(added[0]![0], 'Set-Cookie');
  assert.match(added[0]![1], new RegExp(`^srv_id=${cookie.token(servers[0]!)}; Expires=[A-Z][a-z]{2}, \\d\\d [A-Z][a-z]{2} \\d{4} [0-9:]{8} GMT; Max-Age=3600; Domain=.example.org; Path=/app; HttpOnly; Secure; SameSite=Lax$`));
  added.length = 0;
  cookie.addSetCookie(headers, withCookie(servers[0]!).vars, servers[0]!);
  assert.deepEqual(added, []);
  const session = new StickyCookie(config, 'app', KEY);
  session.addSetCookie(headers, req().vars, servers[1]!);
  assert.equal(added[0]![1], `srv_id=${session.token(servers[1]!)}; Path=/; HttpOnly`);
});

test('the key: secret= text or env:NAME, else FULCRUM_STICKY_SECRET, else the machine id, else random (shared through the environment)', () => {
  const a = stickyKey('s3cret', {});
  const b = stickyKey('env:MY_SECRET', { MY_SECRET: 's3cret' });
  assert.ok(typeof a !== 'string' && typeof b !== 'string');
  assert.deepEqual(a.key, b.key);
  assert.equal(a.source, 'config');
  assert.match(stickyKey('env:NOPE', {}) as string, /NOPE/);
  const env: NodeJS.ProcessEnv = { [SECRET_ENV]: 'shared' };
  const c = stickyKey(undefined, env);
  assert.ok(typeof c !== 'string' && c.source === 'environment');
  const fresh: NodeJS.ProcessEnv = {};
  const d = stickyKey(undefined, fresh);
  assert.ok(typeof d !== 'string');
  if (d.source === 'random') {
    // A worker forked afterwards reads the same key from the environment.
    const again = stickyKey(undefined, fresh);
    assert.ok(typeof again !== 'string');
    assert.deepEqual(again.key, d.key);
  } else {
    assert.equal(d.source, 'machine-id');
    assert.deepEqual((stickyKey(undefined, {}) as { key: Buffer }).key, d.key);
  }
});
