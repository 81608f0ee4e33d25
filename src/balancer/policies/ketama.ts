/**
 * hash KEY consistent (nginx): ketama consistent hashing. Each server gets
 * 160 points per unit of weight on a 32-bit ring; a key goes to the server of
 * the first point at or after crc32(KEY), so adding or removing one of N
 * servers moves only about 1/N of the keys (the ones whose point belonged to
 * that server).
 *
 * Points are nginx's exactly (ngx_http_upstream_init_chash, compatible with
 * Cache::Memcached::Fast): for the server address as written, split into
 * HOST and PORT at the last colon followed by digits, base = crc32 state of
 * HOST "\0" PORT; point j = crc32_final(base + the previous point's 4 bytes,
 * little endian), starting from 0. Equal points keep the first. A key lands
 * where nginx puts it for the same upstream.
 *
 * A pick is a binary search over the sorted points (O(log(160 n)); large
 * rings index it by the top 16 bits of the hash first); a server
 * that cannot take the request passes it to the next point's server, up to
 * 20 points, then round robin (nginx). Backup servers are not allowed.
 */
import { CRC32_INIT, crc32, crc32Byte, crc32Final, crc32String } from '../crc32.js';
import { tierWeights, usable, type BalancingPolicy, type PickRequest, type ServerSnapshot, type Tried } from '../policy.js';
import type { ServerState } from '../../upstream/server-state.js';
import type { Template } from '../../variables/template.js';
import { Rotation } from './round-robin.js';

export const POINTS_PER_WEIGHT = 160;
const MAX_TRIES = 20;

/** nginx's points for one server address and weight, in generation order. */
export function ketamaPoints(address: string, weight: number): Uint32Array {
  let host = address;
  let port = '';
  if (address.length >= 5 && address.slice(0, 5).toLowerCase() === 'unix:') {
    host = address.slice(5);
  } else {
    for (let j = 0; j < address.length; j++) {
      const c = address.charCodeAt(address.length - j - 1);
      if (c === 58) {
        host = address.slice(0, address.length - j - 1);
        port = address.slice(address.length - j);
        break;
      }
      if (c < 48 || c > 57) break;
    }
  }
  let base = crc32String(CRC32_INIT, host);
  base = crc32Byte(base, 0);
  base = crc32String(base, port);
  const n = weight * POINTS_PER_WEIGHT;
  const out = new Uint32Array(n);
  let prev = 0;
  for (let j = 0; j < n; j++) {
    let h = base;
    h = crc32Byte(h, prev & 0xff);
    h = crc32Byte(h, (prev >>> 8) & 0xff);
    h = crc32Byte(h, (prev >>> 16) & 0xff);
    h = crc32Byte(h, (prev >>> 24) & 0xff);
    h = crc32Final(h);
    out[j] = h;
    prev = h;
  }
  return out;
}

/** Points by server state, reused across snapshots (they depend on the address and weight only). */
const pointCache = new WeakMap<ServerState, { weight: number; points: Uint32Array }>();

function pointsOf(server: ServerState, weight: number): Uint32Array {
  const cached = pointCache.get(server);
  if (cached !== undefined && cached.weight === weight) return cached.points;
  const points = ketamaPoints(server.address, weight);
  pointCache.set(server, { weight, points });
  return points;
}

/** Rings with at least this many points get a 2^16-bucket index in front of the binary search. */
const INDEXED_POINTS = 8192;

/** A sorted ring: hashes ascending, and the server index of each point. */
export class KetamaRing {
  readonly hashes: Uint32Array;
  readonly owners: Uint32Array;
  /**
   * For large rings: bucket[b] = the first point whose hash >>> 16 >= b, so a
   * lookup searches one bucket (about points / 65536 entries) instead of the
   * whole ring, which at 160,000 points saves most of the cache misses.
   */
  private readonly buckets: Uint32Array | undefined;

  constructor(servers: readonly ServerState[], weights: readonly number[]) {
    let total = 0;
    const lists = servers.map((s, i) => {
      const p = pointsOf(s, weights[i]!);
      total += p.length;
      return p;
    });
    // hash * 2^20 + server index fits a double exactly; a numeric sort orders by hash, then index.
    const packed = new Float64Array(total);
    let k = 0;
    lists.forEach((list, i) => {
      for (let j = 0; j < list.length; j++) packed[k++] = list[j]! * 1048576 + i;
    });
    packed.sort();
    const hashes = new Uint32Array(total);
    const owners = new Uint32Array(total);
    let n = 0;
    for (let j = 0; j < total; j++) {
      const v = packed[j]!;
      const h = Math.floor(v / 1048576);
      if (n > 0 && hashes[n - 1] === h) continue;
      hashes[n] = h;
      owners[n] = v - h * 1048576;
      n++;
    }
    this.hashes = hashes.subarray(0, n);
    this.owners = owners.subarray(0, n);
    if (n >= INDEXED_POINTS) {
      const buckets = new Uint32Array(65537);
      let j = 0;
      for (let bucket = 0; bucket <= 65536; bucket++) {
        while (j < n && hashes[j]! >>> 16 < bucket) j++;
        buckets[bucket] = j;
      }
      this.buckets = buckets;
    }
  }

  /** The first point with hash >= `hash` (wrapping to 0). */
  find(hash: number): number {
    const hashes = this.hashes;
    let lo = 0;
    let hi = hashes.length;
    const buckets = this.buckets;
    if (buckets !== undefined) {
      const bucket = hash >>> 16;
      lo = buckets[bucket]!;
      hi = buckets[bucket + 1]!;
    }
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (hashes[mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    return lo === hashes.length ? 0 : lo;
  }
}

export class KetamaPolicy implements BalancingPolicy {
  readonly name = 'hash consistent';
  private readonly servers: readonly ServerState[];
  readonly ring: KetamaRing;
  private readonly fallback: Rotation;

  constructor(
    snapshot: ServerSnapshot,
    private readonly key: Template,
  ) {
    this.servers = snapshot.primary;
    this.ring = new KetamaRing(snapshot.primary, tierWeights(snapshot.primary, snapshot.primaryWeights));
    this.fallback = new Rotation(snapshot.primary, snapshot.primaryWeights);
  }

  pick(request: PickRequest, tried: Tried): ServerState | undefined {
    const servers = this.servers;
    const key = servers.length < 2 ? '' : this.key.expand(request.vars);
    if (key === '') return this.fallback.pick(request, tried);
    return this.pickKey(key, request, tried);
  }

  pickKey(key: string, request: PickRequest, tried: Tried): ServerState | undefined {
    const ring = this.ring;
    const points = ring.hashes.length;
    let at = ring.find(crc32(key));
    for (let tries = 0; tries <= MAX_TRIES; tries++) {
      const server = this.servers[ring.owners[at]!]!;
      if (usable(server, request, tried)) return server;
      at = at + 1 === points ? 0 : at + 1;
    }
    return this.fallback.pick(request, tried);
  }

  explain(_server: ServerState, request: PickRequest): string {
    return `consistent hash of ${this.key.source} = "${this.key.expand(request.vars)}"`;
  }
}

export const ketama =
  (key: Template) =>
  (snapshot: ServerSnapshot): BalancingPolicy =>
    new KetamaPolicy(snapshot, key);
