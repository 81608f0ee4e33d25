/**
 * ip_hash (nginx): the client address picks the server, so a client keeps
 * reaching the same one. The key is the first three octets of an IPv4
 * address (a whole /24 goes to one server) or the whole IPv6 address; an
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack socket
 * reports) counts as IPv4.
 *
 * nginx's exact hash (ngx_http_upstream_ip_hash_module.c): hash = 89, then
 * hash = (hash * 113 + byte) % 6271 for each key byte; the server is found by
 * walking the weights with hash % total_weight. When that server cannot take
 * the request (down, failed, full, already tried), the bytes are hashed again
 * on top of the previous hash; after 20 misses, round robin. So a client goes
 * where nginx would send it for the same list of servers, and a server marked
 * `down` keeps the others' clients where they were.
 *
 * The weight walk is a binary search (O(log n)); backup servers are not
 * allowed with ip_hash (as in nginx).
 */
import { usable, tierWeights, type BalancingPolicy, type PickRequest, type ServerSnapshot, type Tried } from '../policy.js';
import { WeightRanges } from '../weight-ranges.js';
import type { ServerState } from '../../upstream/server-state.js';
import { Rotation } from './round-robin.js';

const MAX_TRIES = 20;

/**
 * Writes the ip_hash key bytes of `address` into `out` (at least 16 bytes)
 * and returns how many: 3 for IPv4, 16 for IPv6, 0 for anything else.
 */
export function ipHashKey(address: string, out: Uint8Array): number {
  let a = address;
  if (a.length > 7 && a.charCodeAt(0) === 58 && a.startsWith('::ffff:') && a.indexOf('.') > 0) a = a.slice(7);
  if (a.indexOf(':') < 0) return parseIPv4(a, out, 0, 3) ? 3 : 0;
  return parseIPv6(a, out) ? 16 : 0;
}

/** Parses a dotted quad, writing its first `take` octets at `at`. */
function parseIPv4(a: string, out: Uint8Array, at: number, take: number): boolean {
  let octet = 0;
  let digits = 0;
  let index = 0;
  for (let i = 0; i <= a.length; i++) {
    const c = i === a.length ? 46 : a.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || octet > 255 || index > 3) return false;
      if (index < take) out[at + index] = octet;
      index++;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      octet = octet * 10 + (c - 48);
      digits++;
    } else {
      return false;
    }
  }
  return index === 4;
}

function parseIPv6(address: string, out: Uint8Array): boolean {
  const zone = address.indexOf('%');
  const a = zone < 0 ? address : address.slice(0, zone);
  const double = a.indexOf('::');
  if (double >= 0 && a.indexOf('::', double + 1) >= 0) return false;
  const head = double < 0 ? a : a.slice(0, double);
  const tail = double < 0 ? '' : a.slice(double + 2);
  const groups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const v4 = new Uint8Array(4);
        if (!parseIPv4(g, v4, 0, 4)) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return undefined;
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const h = groups(head);
  const t = groups(tail);
  if (h === undefined || t === undefined) return false;
  const missing = 8 - h.length - t.length;
  if (double < 0 ? missing !== 0 : missing < 1) return false;
  const all = [...h, ...new Array<number>(double < 0 ? 0 : missing).fill(0), ...t];
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return true;
}

export class IpHashPolicy implements BalancingPolicy {
  readonly name = 'ip_hash';
  private readonly servers: readonly ServerState[];
  private readonly ranges: WeightRanges;
  private readonly fallback: Rotation;
  private readonly key = new Uint8Array(16);

  constructor(snapshot: ServerSnapshot) {
    this.servers = snapshot.primary;
    this.ranges = new WeightRanges(tierWeights(snapshot.primary, snapshot.primaryWeights));
    this.fallback = new Rotation(snapshot.primary, snapshot.primaryWeights);
  }

  pick(request: PickRequest, tried: Tried): ServerState | undefined {
    const servers = this.servers;
    const len = servers.length < 2 ? 0 : ipHashKey(request.vars.remoteAddr, this.key);
    if (len === 0) return this.fallback.pick(request, tried);
    const key = this.key;
    const total = this.ranges.total;
    let hash = 89;
    for (let tries = 0; tries <= MAX_TRIES; tries++) {
      for (let i = 0; i < len; i++) hash = (hash * 113 + key[i]!) % 6271;
      const server = servers[this.ranges.find(hash % total)]!;
      if (usable(server, request, tried)) return server;
    }
    return this.fallback.pick(request, tried);
  }

  explain(_server: ServerState, request: PickRequest): string {
    return `ip_hash of ${request.vars.remoteAddr}`;
  }
}

export const ipHash = (snapshot: ServerSnapshot): BalancingPolicy => new IpHashPolicy(snapshot);
