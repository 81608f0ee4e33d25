/**
 * Hashing methods with real backend processes:
 *
 * - `hash $arg_k consistent`: every key keeps its backend; adding a 5th
 *   backend (reload) moves about 1/5 of the keys, all to the new one;
 *   removing one moves only that backend's keys;
 * - `ip_hash`: clients of one /24 share a backend; different networks
 *   spread; a client keeps its backend across requests.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ask, askFrom, startBalancing } from '../support/balancing.js';

const KEYS = Array.from({ length: 400 }, (_, i) => `user-${i}`);

async function owners(port: number): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const k of KEYS) {
    const a = await ask(port, `/hello?k=${k}`);
    assert.equal(a.status, 200, a.error);
    out.set(k, a.backend);
  }
  return out;
}

describe('hash consistent', () => {
  test('adding one backend to four moves about 1/5 of the keys, all to it; removing one moves only its keys', async () => {
    const env = await startBalancing(5, ({ server }) => ['hash $arg_k consistent;', server(0), server(1), server(2), server(3)].join('\n'));
    try {
      const four = await owners(env.port);
      assert.deepEqual(await owners(env.port), four, 'every key keeps its backend');
      assert.equal(new Set(four.values()).size, 4);

      await env.fulcrum.reload(env.config(['hash $arg_k consistent;', env.server(0), env.server(1), env.server(2), env.server(3), env.server(4)].join('\n')));
      const five = await owners(env.port);
      const moved = KEYS.filter((k) => four.get(k) !== five.get(k));
      assert.ok(Math.abs(moved.length / KEYS.length - 1 / 5) <= 0.07, `${moved.length} of ${KEYS.length} keys moved`);
      for (const k of moved) assert.equal(five.get(k), 'backend_5');

      await env.fulcrum.reload(env.config(['hash $arg_k consistent;', env.server(0), env.server(2), env.server(3), env.server(4)].join('\n')));
      const without2 = await owners(env.port);
      const moved2 = KEYS.filter((k) => five.get(k) !== without2.get(k));
      for (const k of moved2) assert.equal(five.get(k), 'backend_2', `${k} moved though its backend stayed`);
      assert.ok(Math.abs(moved2.length / KEYS.length - 1 / 5) <= 0.07, `${moved2.length} of ${KEYS.length} keys moved`);
    } finally {
      await env.stop();
    }
  });
});

describe('ip_hash', () => {
  test('a /24 shares a backend, networks spread, a client keeps its backend', async () => {
    const env = await startBalancing(3, ({ server }) => ['ip_hash;', server(0), server(1), server(2)].join('\n'));
    try {
      const byNetwork = new Map<number, string>();
      for (let net = 0; net < 30; net++) {
        const seen = new Set<string>();
        for (const host of [1, 77, 254]) {
          const a = await askFrom(env.port, `127.0.${net}.${host}`);
          assert.equal(a.status, 200, a.error);
          seen.add(a.backend);
        }
        assert.equal(seen.size, 1, `127.0.${net}.0/24 on one backend: ${[...seen].join(', ')}`);
        byNetwork.set(net, [...seen][0]!);
      }
      assert.equal(new Set(byNetwork.values()).size, 3, 'the networks spread over every backend');
      const again = await askFrom(env.port, '127.0.5.9');
      assert.equal(again.backend, byNetwork.get(5));
      assert.match(String(again.response!.headers['x-fulcrum-decision']), /answered: ip_hash of 127\.0\.5\.9$/);
    } finally {
      await env.stop();
    }
  });
});
