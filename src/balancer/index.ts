/**
 * Balancing methods by name. Each method lives in its own file under
 * policies/; this table is the only place that knows them all. It also
 * stacks the upstream-wide layers on top of the method: panic mode
 * (panic.ts) and sticky sessions (policies/sticky.ts), in that order, so a
 * request bound by its cookie goes to its server first, and everything else
 * goes through the method, in panic mode when too few servers are healthy.
 */
import type { UpstreamBlockConfig } from '../config/schema.js';
import { UnknownVariableError, compileTemplate, type Template, type VariableScope } from '../variables/template.js';
import { PanicState, panicGuard } from './panic.js';
import type { BalancingPolicy, PolicyFactory, ServerSnapshot } from './policy.js';
import { hash } from './policies/hash.js';
import { ipHash } from './policies/ip-hash.js';
import { ketama } from './policies/ketama.js';
import { leastConn } from './policies/least-conn.js';
import { leastTime } from './policies/least-time.js';
import { random } from './policies/random.js';
import { randomTwo } from './policies/random-two.js';
import { roundRobin } from './policies/round-robin.js';
import { StickyCookie, sticky, stickyKey } from './policies/sticky.js';

export interface PolicySetup {
  factory: PolicyFactory;
  /** The method as written ("least_conn", "hash $request_uri consistent"), for logs and the debug header. */
  method: string;
  /** Set with `sticky cookie`: the exchange adds Set-Cookie to responses through it. */
  sticky: StickyCookie | undefined;
  panic: PanicState | undefined;
  /** Whether slow_start can ramp weights with this method (not with hash and ip_hash: it would move keys). */
  weighted: boolean;
  warnings: string[];
}

/** The balancing method alone, or an error message (a hash key with an unknown variable...). */
export function methodFactory(u: Pick<UpstreamBlockConfig, 'balance' | 'name'>, scope?: VariableScope): { factory: PolicyFactory; method: string; weighted: boolean } | string {
  const b = u.balance;
  switch (b.method) {
    case 'round_robin':
      return { factory: roundRobin, method: 'round_robin', weighted: true };
    case 'least_conn':
      return { factory: leastConn, method: 'least_conn', weighted: true };
    case 'ip_hash':
      return { factory: ipHash, method: 'ip_hash', weighted: false };
    case 'hash': {
      if (b.key === undefined || b.key === '') return `upstream "${u.name}": hash needs a key`;
      let key: Template;
      try {
        key = compileTemplate(b.key, scope);
      } catch (err) {
        if (err instanceof UnknownVariableError) return `upstream "${u.name}": ${err.message} in the hash key`;
        throw err;
      }
      return b.consistent
        ? { factory: ketama(key), method: `hash ${b.key} consistent`, weighted: false }
        : { factory: hash(key), method: `hash ${b.key}`, weighted: false };
    }
    case 'random':
      if (!b.two) return { factory: random, method: 'random', weighted: true };
      return {
        factory: randomTwo(b.choose ?? 'least_conn', b.measure === 'last_byte'),
        method: `random two ${b.choose === 'least_time' ? `least_time=${b.measure}` : 'least_conn'}`,
        weighted: true,
      };
    case 'least_time':
      return { factory: leastTime(b.measure === 'last_byte'), method: `least_time ${b.measure}`, weighted: true };
  }
}

/**
 * The whole policy stack of an upstream block, or an error message. Called
 * at compile time; the factory runs whenever the group's snapshot changes.
 */
export function policySetupFor(u: UpstreamBlockConfig, scope?: VariableScope): PolicySetup | string {
  const m = methodFactory(u, scope);
  if (typeof m === 'string') return m;
  const warnings: string[] = [];
  let factory: (snapshot: ServerSnapshot) => BalancingPolicy = m.factory;
  let panic: PanicState | undefined;
  if (u.panic_threshold > 0) {
    panic = new PanicState(u.name, u.panic_threshold);
    factory = panicGuard(panic, factory);
  }
  let cookie: StickyCookie | undefined;
  if (u.sticky !== undefined) {
    const key = stickyKey(u.sticky.secret);
    if (typeof key === 'string') return `upstream "${u.name}": ${key}`;
    if (key.source === 'random') {
      warnings.push(
        `sticky cookie of upstream "${u.name}": no secret= and no /etc/machine-id: sessions survive reloads and worker restarts but not a restart of fulcrum (set secret=, or FULCRUM_STICKY_SECRET)`,
      );
    }
    cookie = new StickyCookie(u.sticky, u.name, key.key);
    factory = sticky(cookie, factory);
  }
  return { factory, method: m.method, sticky: cookie, panic, weighted: m.weighted, warnings };
}
