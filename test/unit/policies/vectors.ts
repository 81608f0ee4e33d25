/**
 * Pick vectors recorded from nginx 1.22.1 (test/unit/policies/nginx-vectors.json):
 * an upstream of 127.0.0.1:27581, 127.0.0.1:27582 weight=2, 127.0.0.1:27583,
 * 127.0.0.1:27584, with `hash $arg_k`, `hash $arg_k consistent` and `ip_hash`,
 * and again with 27583 marked `down`; each entry is the port nginx chose.
 */
import { readFileSync } from 'node:fs';
import { pool } from './fixtures.js';
import type { ServerState } from '../../../src/upstream/server-state.js';

interface Vectors {
  hash: Record<string, number>;
  consistent: Record<string, number>;
  hashDown: Record<string, number>;
  consistentDown: Record<string, number>;
  ipHash: Record<string, number>;
  ipHashDown: Record<string, number>;
}

/** dist/test/unit/policies -> the repository root. */
export const NGINX: Vectors = JSON.parse(readFileSync(new URL('../../../../test/unit/policies/nginx-vectors.json', import.meta.url), 'utf8')) as Vectors;

export const PORTS = [27581, 27582, 27583, 27584];

export function nginxPool(down: boolean): ServerState[] {
  const servers = pool(4, { addresses: PORTS.map((p) => `127.0.0.1:${p}`), weights: [1, 2, 1, 1], down: down ? [2] : [] });
  servers.forEach((s, i) => (s.endpoint = { host: '127.0.0.1', port: PORTS[i]! }));
  return servers;
}
