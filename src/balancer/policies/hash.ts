/**
 * hash KEY (nginx, without `consistent`): the key (any text with variables:
 * `$request_uri`, `$arg_user`, `$cookie_session`...) picks the server, so
 * equal keys reach the same server while the list of servers stays the same.
 *
 * nginx's exact scheme (ngx_http_upstream_hash_module.c, compatible with
 * Cache::Memcached): hash += (crc32([REHASH] KEY) >> 16) & 0x7fff, with
 * REHASH the decimal try number, omitted on the first try; the server is
 * found by walking the weights with hash % total_weight (here a binary
 * search, O(log n)). After 20 misses (down, failed, full, tried), round
 * robin. An empty key also goes round robin, as in nginx.
 *
 * Adding or removing a server remaps most keys; use `hash KEY consistent`
 * (ketama.ts) when that matters. Backup servers are not allowed (nginx).
 */
import { CRC32_INIT, crc32Final, crc32String } from '../crc32.js';
import { tierWeights, usable, type BalancingPolicy, type PickRequest, type ServerSnapshot, type Tried } from '../policy.js';
import { WeightRanges } from '../weight-ranges.js';
import type { ServerState } from '../../upstream/server-state.js';
import type { Template } from '../../variables/template.js';
import { Rotation } from './round-robin.js';

const MAX_TRIES = 20;

/** The server index nginx's `hash` chooses for `key` on its `tries`-th attempt, given the running sum. */
export function hashStep(key: string, rehash: number, sum: number): number {
  let crc = CRC32_INIT;
  if (rehash > 0) crc = crc32String(crc, '' + rehash);
  crc = crc32Final(crc32String(crc, key));
  return sum + ((crc >>> 16) & 0x7fff);
}

export class HashPolicy implements BalancingPolicy {
  readonly name = 'hash';
  private readonly servers: readonly ServerState[];
  private readonly ranges: WeightRanges;
  private readonly fallback: Rotation;

  constructor(
    snapshot: ServerSnapshot,
    private readonly key: Template,
  ) {
    this.servers = snapshot.primary;
    this.ranges = new WeightRanges(tierWeights(snapshot.primary, snapshot.primaryWeights));
    this.fallback = new Rotation(snapshot.primary, snapshot.primaryWeights);
  }

  pick(request: PickRequest, tried: Tried): ServerState | undefined {
    const servers = this.servers;
    const key = servers.length < 2 ? '' : this.key.expand(request.vars);
    if (key === '') return this.fallback.pick(request, tried);
    const total = this.ranges.total;
    let sum = 0;
    for (let rehash = 0; rehash <= MAX_TRIES; rehash++) {
      sum = hashStep(key, rehash, sum);
      const server = servers[this.ranges.find(sum % total)]!;
      if (usable(server, request, tried)) return server;
    }
    return this.fallback.pick(request, tried);
  }

  explain(_server: ServerState, request: PickRequest): string {
    return `hash of ${this.key.source} = "${this.key.expand(request.vars)}"`;
  }
}

export const hash =
  (key: Template) =>
  (snapshot: ServerSnapshot): BalancingPolicy =>
    new HashPolicy(snapshot, key);
