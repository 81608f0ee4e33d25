/** Fixture pools for the policy tests: server states, requests, tried lists, tallies. */
import type { BalancingPolicy, PickRequest, Tried } from '../../../src/balancer/policy.js';
import { ServerState } from '../../../src/upstream/server-state.js';
import type { VariableContext } from '../../../src/variables/context.js';

export interface PoolOptions {
  weights?: number[];
  backup?: number[];
  down?: number[];
  /** Address prefix; default 10.0.0.1:80xx style "s0", "s1"... */
  addresses?: string[];
}

/** n servers named s0.. (or the given addresses), weights 1 unless given. */
export function pool(n: number, opts: PoolOptions = {}): ServerState[] {
  return Array.from({ length: n }, (_, i) => {
    const address = opts.addresses?.[i] ?? `s${i}`;
    const s = new ServerState('u', address, { host: '127.0.0.1', port: 1000 + i });
    s.weight = opts.weights?.[i] ?? 1;
    s.backup = opts.backup?.includes(i) ?? false;
    s.configDown = opts.down?.includes(i) ?? false;
    return s;
  });
}

export function snapshot(servers: ServerState[]): { primary: ServerState[]; backup: ServerState[] } {
  return { primary: servers.filter((s) => !s.backup), backup: servers.filter((s) => s.backup) };
}

/** Variables a policy may read. */
export function vars(v: { remoteAddr?: string; args?: string; cookie?: string } = {}): VariableContext {
  const lower = v.cookie === undefined ? [] : ['cookie'];
  const values = v.cookie === undefined ? [] : [v.cookie];
  return {
    remoteAddr: v.remoteAddr ?? '127.0.0.1',
    args: v.args ?? '',
    request: { lower, values, header: (n: string) => (n === 'cookie' ? v.cookie : undefined), headerJoined: (n: string) => (n === 'cookie' ? v.cookie : undefined) },
  } as unknown as VariableContext;
}

export const req = (v: VariableContext = vars(), now = 0): PickRequest => ({ vars: v, now });
export const none: Tried = { length: 0, includes: () => false };
export const triedOf = (list: readonly ServerState[]): Tried => ({ length: list.length, includes: (s) => list.includes(s) });

/** Names of `n` picks. */
export function picks(policy: BalancingPolicy, n: number, request: PickRequest = req()): string[] {
  return Array.from({ length: n }, () => policy.pick(request, none)?.address ?? '-');
}

export function tally(names: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of names) out[n] = (out[n] ?? 0) + 1;
  return out;
}

/** Every candidate of one request, in order, until the policy has none left: a retry sequence. */
export function retrySequence(policy: BalancingPolicy, request: PickRequest = req()): string[] {
  const tried: ServerState[] = [];
  for (;;) {
    const s = policy.pick(request, triedOf(tried));
    if (s === undefined) return tried.map((t) => t.address);
    if (tried.includes(s)) throw new Error(`${s.address} picked twice for one request`);
    tried.push(s);
  }
}

/** Asserts |actual - expected| <= tolerance, with a message. */
export function near(actual: number, expected: number, tolerance: number, what: string): void {
  if (Math.abs(actual - expected) > tolerance) throw new Error(`${what}: ${actual}, expected ${expected} ± ${tolerance}`);
}
