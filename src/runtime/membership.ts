/**
 * Which servers an upstream has right now: the config file's servers, with
 * host names given `resolve` replaced by the addresses DNS returned for them
 * (A/AAAA, or SRV with `service=`), the servers a `servers_file` lists, and
 * the admin API's changes (add, remove, drain, disable, enable) on top.
 *
 * The inputs are plain data, so the process that runs discovery and the
 * admin API (the single process, or the supervisor) can send them to every
 * worker, and every worker computes the same server list from them. They
 * outlive reloads: a reload recompiles the config file and applies the same
 * inputs again, so a server drained through the API stays drained across the
 * certificate reload the seed does every 6 hours, and discovered servers do
 * not fall back to the config's host names for a moment.
 */
import * as net from 'node:net';
import type { UpstreamBlockConfig, UpstreamServerConfig } from '../config/schema.js';
import { parseServerAddress } from '../upstream/group.js';
import type { ServerEndpoint, ServerState } from '../upstream/server-state.js';

export type ServerSource = ServerState['source'];

/** One server found by discovery. */
export interface DiscoveredServer {
  /** "ip:port" ("[v6]:port"), or host:port for servers-file entries. */
  address: string;
  /** SRV weight (used when > 0). */
  weight?: number;
  /** SRV: not of the highest priority. */
  backup?: boolean;
  /** Servers-file entries carry all their parameters. */
  params?: UpstreamServerConfig;
}

/** Runtime changes made through the admin API. */
export type ServerOp =
  | { op: 'drain' | 'disable' | 'enable' | 'remove'; upstream: string; server: string }
  | { op: 'add'; upstream: string; server: string; params: UpstreamServerConfig };

export type OpResult = { ok: true } | { ok: false; status: number; error: string };

export interface MembershipState {
  discovered: [upstream: string, source: string, servers: DiscoveredServer[]][];
  added: [upstream: string, params: UpstreamServerConfig][];
  removed: [upstream: string, address: string][];
  flags: [upstream: string, address: string, flag: Flag][];
}

type Flag = 'drain' | 'disable' | 'enable';

export interface Member {
  address: string;
  endpoint: ServerEndpoint;
  params: UpstreamServerConfig;
  source: ServerSource;
}

/** Whether a config server is looked up in DNS while running. */
export function isDiscovered(s: UpstreamServerConfig): boolean {
  if (s.service !== undefined) return true;
  if (!s.resolve) return false;
  const endpoint = parseServerAddress(s.address);
  return typeof endpoint !== 'string' && net.isIP(endpoint.host) === 0;
}

/** The discovery source id of a config server (stable across reloads that keep the line). */
export function dnsSourceId(s: UpstreamServerConfig): string {
  return s.service === undefined ? `dns:${s.address}${s.backup ? ':backup' : ''}` : `srv:${s.service}:${s.address}${s.backup ? ':backup' : ''}`;
}

export const FILE_SOURCE = 'file';

export class Membership {
  private readonly discovered = new Map<string, Map<string, DiscoveredServer[]>>();
  private readonly added = new Map<string, Map<string, UpstreamServerConfig>>();
  private readonly removed = new Map<string, Set<string>>();
  private readonly flags = new Map<string, Map<string, Flag>>();

  /** Records what a discovery source found (undefined: forget it, e.g. the source left the config). Returns whether anything changed. */
  setDiscovered(upstream: string, source: string, servers: DiscoveredServer[] | undefined): boolean {
    let bySource = this.discovered.get(upstream);
    const before = bySource?.get(source);
    if (servers === undefined) {
      if (before === undefined) return false;
      bySource!.delete(source);
      return true;
    }
    if (before !== undefined && JSON.stringify(before) === JSON.stringify(servers)) return false;
    if (bySource === undefined) this.discovered.set(upstream, (bySource = new Map()));
    bySource.set(source, servers);
    return true;
  }

  /** Whether DNS or the servers file answered for this source yet. */
  hasDiscovered(upstream: string, source: string): boolean {
    return this.discovered.get(upstream)?.has(source) === true;
  }

  /**
   * Checks an admin operation against the upstream's current servers and
   * records it. `config` is the upstream as the running configuration has it
   * (undefined: no such upstream).
   */
  apply(op: ServerOp, config: UpstreamBlockConfig | undefined): OpResult {
    if (config === undefined) return { ok: false, status: 404, error: `no upstream "${op.upstream}" (implicit upstreams of proxy_pass URLs cannot be changed)` };
    const members = this.effective(config);
    const present = members.some((m) => m.address === op.server);
    const upstream = op.upstream;
    switch (op.op) {
      case 'add': {
        if (present) return { ok: false, status: 409, error: `upstream "${upstream}" already has server "${op.server}"` };
        const endpoint = parseServerAddress(op.server);
        if (typeof endpoint === 'string') return { ok: false, status: 400, error: endpoint };
        const method = config.balance.method;
        if (op.params.backup && (method === 'hash' || method === 'ip_hash' || method === 'random')) {
          return { ok: false, status: 400, error: `balancing method "${method}" does not support backup servers` };
        }
        const removed = this.removed.get(upstream);
        if (removed?.delete(op.server) === true && this.effective(config).some((m) => m.address === op.server)) return { ok: true };
        mapOf(this.added, upstream).set(op.server, { ...op.params, address: op.server });
        return { ok: true };
      }
      case 'remove': {
        if (!present) return { ok: false, status: 404, error: `upstream "${upstream}" has no server "${op.server}"` };
        if (members.length === 1) return { ok: false, status: 409, error: `"${op.server}" is the last server of upstream "${upstream}"` };
        this.added.get(upstream)?.delete(op.server);
        this.flags.get(upstream)?.delete(op.server);
        if (this.effective(config).some((m) => m.address === op.server)) setOf(this.removed, upstream).add(op.server);
        return { ok: true };
      }
      default: {
        if (!present) return { ok: false, status: 404, error: `upstream "${upstream}" has no server "${op.server}"` };
        mapOf(this.flags, upstream).set(op.server, op.op);
        return { ok: true };
      }
    }
  }

  /** The servers upstream `u` has now, in order: config (with discovered addresses in place of names), servers file, admin additions. */
  effective(u: UpstreamBlockConfig): Member[] {
    const out: Member[] = [];
    const seen = new Set<string>();
    const removed = this.removed.get(u.name);
    const flags = this.flags.get(u.name);
    const found = this.discovered.get(u.name);
    const push = (address: string, params: UpstreamServerConfig, source: ServerSource): void => {
      if (seen.has(address) || removed?.has(address) === true) return;
      const endpoint = parseServerAddress(address);
      if (typeof endpoint === 'string') return;
      seen.add(address);
      const flag = flags?.get(address);
      const p = params.address === address ? params : { ...params, address };
      out.push({ address, endpoint, params: flag === undefined ? p : withFlag(p, flag), source });
    };
    for (const s of u.servers) {
      if (!isDiscovered(s)) {
        push(s.address, s, 'config');
        continue;
      }
      const list = found?.get(dnsSourceId(s));
      if (list === undefined) {
        // Not resolved yet: a host name is resolved when connecting, as without `resolve`.
        if (s.service === undefined) push(s.address, s, 'config');
        continue;
      }
      for (const d of list) {
        push(d.address, { ...s, weight: d.weight !== undefined && d.weight > 0 ? d.weight : s.weight, backup: d.backup ?? s.backup }, s.service === undefined ? 'dns' : 'srv');
      }
    }
    if (u.servers_file !== undefined) for (const d of found?.get(FILE_SOURCE) ?? []) if (d.params !== undefined) push(d.address, d.params, 'file');
    for (const a of this.added.get(u.name)?.values() ?? []) push(a.address, a, 'admin');
    return out;
  }

  toState(): MembershipState {
    const state: MembershipState = { discovered: [], added: [], removed: [], flags: [] };
    for (const [u, m] of this.discovered) for (const [source, servers] of m) state.discovered.push([u, source, servers]);
    for (const [u, m] of this.added) for (const params of m.values()) state.added.push([u, params]);
    for (const [u, set] of this.removed) for (const a of set) state.removed.push([u, a]);
    for (const [u, m] of this.flags) for (const [a, f] of m) state.flags.push([u, a, f]);
    return state;
  }

  static fromState(state: MembershipState): Membership {
    const m = new Membership();
    for (const [u, source, servers] of state.discovered) m.setDiscovered(u, source, servers);
    for (const [u, params] of state.added) mapOf(m.added, u).set(params.address, params);
    for (const [u, a] of state.removed) setOf(m.removed, u).add(a);
    for (const [u, a, f] of state.flags) mapOf(m.flags, u).set(a, f);
    return m;
  }
}

function withFlag(p: UpstreamServerConfig, flag: Flag): UpstreamServerConfig {
  if (flag === 'drain') return { ...p, drain: true };
  if (flag === 'disable') return { ...p, down: true };
  return { ...p, down: false, drain: false };
}

function mapOf<V>(m: Map<string, Map<string, V>>, key: string): Map<string, V> {
  let inner = m.get(key);
  if (inner === undefined) m.set(key, (inner = new Map()));
  return inner;
}

function setOf(m: Map<string, Set<string>>, key: string): Set<string> {
  let inner = m.get(key);
  if (inner === undefined) m.set(key, (inner = new Set()));
  return inner;
}
