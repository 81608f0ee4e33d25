/**
 * npm run bench:policies — nanoseconds per pick of every balancing policy at
 * N = 3, 100 and 1,000 servers, printed as a Markdown table
 * (docs/benchmarks.md, "Balancing policies").
 *
 * A "request" here is what the proxy does per request with the policy: pick,
 * then acquire() and release() the server (the load bookkeeping that
 * least_conn and least_time turn into heap updates). Keys, client addresses
 * and cookies cycle through 4,096 precomputed values, so hash methods pay
 * for expanding the key (`$request_uri`) and hashing it, as in production.
 * Each cell runs in its own process (so no policy's code is optimised for
 * another's shapes) and is the fastest of 15 runs of at least 200,000
 * requests after a warm-up: the fastest run is the one least disturbed by
 * other processes, so it estimates the cost itself best on a shared machine.
 *
 * Also measured:
 * - round robin before this work (the code from before issue 4, inlined
 *   below), to show the default did not get slower;
 * - the per-request bookkeeping: `active++/--` (before) against
 *   acquire()/release() (after) on a server nobody watches;
 * - ketama against a Maglev table (Eisenbud et al., 2016; lookup table of a
 *   prime size >= 100 N, kept when a server is added), on lookup time, build time and the share of keys
 *   moved when one server is added: Maglev would replace ketama only if it
 *   won (see the verdict printed at the end).
 *
 * Options: --quick (fewer runs, for a smoke test).
 */
import { PanicGuard, PanicState } from '../src/balancer/panic.js';
import { gcd, type BalancingPolicy, type PickRequest, type ServerSnapshot, type Tried } from '../src/balancer/policy.js';
import { HashPolicy } from '../src/balancer/policies/hash.js';
import { IpHashPolicy } from '../src/balancer/policies/ip-hash.js';
import { KetamaPolicy, KetamaRing } from '../src/balancer/policies/ketama.js';
import { LeastConnPolicy } from '../src/balancer/policies/least-conn.js';
import { LeastTimePolicy } from '../src/balancer/policies/least-time.js';
import { RandomPolicy } from '../src/balancer/policies/random.js';
import { RandomTwoPolicy } from '../src/balancer/policies/random-two.js';
import { RoundRobinPolicy, smoothWeightedSequence } from '../src/balancer/policies/round-robin.js';
import { StickyCookie, StickyPolicy } from '../src/balancer/policies/sticky.js';
import { crc32 } from '../src/balancer/crc32.js';
import { seededRandom } from '../src/balancer/rng.js';
import { ServerState } from '../src/upstream/server-state.js';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { compileTemplate } from '../src/variables/template.js';
import type { VariableContext } from '../src/variables/context.js';

const QUICK = process.argv.includes('--quick');
const RUNS = QUICK ? 3 : 15;
const MIN_OPS = QUICK ? 50_000 : 200_000;
const SIZES = [3, 100, 1000];
const KEYS = 4096;
const NONE: Tried = { length: 0, includes: () => false };

function servers(n: number, weighted = false): ServerState[] {
  return Array.from({ length: n }, (_, i) => {
    const s = new ServerState('bench', `10.${(i >> 8) & 255}.${i & 255}.1:8080`, { host: '10.0.0.1', port: 8080 });
    s.weight = weighted ? 1 + (i % 5) : 1;
    return s;
  });
}

const snap = (list: ServerState[]): ServerSnapshot => ({ primary: list, backup: [] });

/** Request contexts cycling through keys, client addresses and (for sticky) cookies. */
function contexts(cookieFor?: (i: number) => string): VariableContext[] {
  return Array.from({ length: KEYS }, (_, i) => {
    const cookie = cookieFor?.(i);
    return {
      remoteAddr: `${1 + (i % 200)}.${(i * 7) & 255}.${(i * 13) & 255}.${i & 255}`,
      args: `k=user-${i}&x=1`,
      request: { path: `/api/users/${i}?x=1`, lower: cookie === undefined ? [] : ['cookie'], values: cookie === undefined ? [] : [cookie] },
    } as unknown as VariableContext;
  });
}

// ------------------------------------------------------------------ round robin before issue 4 (reference)

/** The original usable() (src/balancer/policy.ts before issue 4). */
function oldUsable(server: ServerState, request: PickRequest, tried: Tried): boolean {
  return server.isAvailable(request.now) && (tried.length === 0 || !tried.includes(server));
}

/** The original Rotation (src/balancer/policies/round-robin.ts before issue 4), table path. */
class OldRotation {
  private readonly table: Uint32Array | undefined;
  private cursor = 0;

  constructor(private readonly servers: readonly ServerState[]) {
    const total = servers.reduce((a, s) => a + s.weight, 0);
    if (servers.length > 0 && total / servers.map((s) => s.weight).reduce((a, b) => gcd(a, b)) <= 1 << 16) {
      this.table = Uint32Array.from(smoothWeightedSequence(servers.map((s) => s.weight)));
    }
  }

  pick(request: PickRequest, tried: Tried): ServerState | undefined {
    const servers = this.servers;
    if (servers.length === 0) return undefined;
    const table = this.table;
    if (table === undefined) return undefined;
    const len = table.length;
    for (let step = 0; step < len; step++) {
      const server = servers[table[this.cursor]!]!;
      this.cursor = this.cursor + 1 === len ? 0 : this.cursor + 1;
      if (oldUsable(server, request, tried)) return server;
    }
    return undefined;
  }
}

class OldRoundRobin implements BalancingPolicy {
  readonly name = 'round_robin (before)';
  private readonly primary: OldRotation;
  private readonly backup: OldRotation;
  constructor(s: ServerSnapshot) {
    this.primary = new OldRotation(s.primary);
    this.backup = new OldRotation(s.backup);
  }
  pick(request: PickRequest, tried: Tried): ServerState | undefined {
    return this.primary.pick(request, tried) ?? this.backup.pick(request, tried);
  }
}

// ------------------------------------------------------------------ measuring

interface Case {
  name: string;
  make(n: number): { policy: BalancingPolicy; vars: VariableContext[] };
  /** Request bookkeeping: 'new' = acquire/release, 'old' = active++/-- (only for the "before" reference). */
  bookkeeping?: 'new' | 'old';
}

let sink = 0;

function measure(policy: BalancingPolicy, vars: VariableContext[], bookkeeping: 'new' | 'old'): number {
  const requests: PickRequest[] = vars.map((v) => ({ vars: v, now: 1000 }));
  const mask = requests.length - 1;
  const run = (ops: number): number => {
    const t0 = process.hrtime.bigint();
    if (bookkeeping === 'new') {
      for (let i = 0; i < ops; i++) {
        const s = policy.pick(requests[i & mask]!, NONE)!;
        s.acquire();
        s.release();
      }
    } else {
      for (let i = 0; i < ops; i++) {
        const s = policy.pick(requests[i & mask]!, NONE)!;
        s.active++;
        s.active--;
      }
    }
    return Number(process.hrtime.bigint() - t0);
  };
  // Warm up and size a run to ~20 ms.
  let ops = 20_000;
  for (;;) {
    const ns = run(ops);
    if (ns > 20e6 || ops >= 5e6) break;
    ops *= 2;
  }
  ops = Math.max(ops, MIN_OPS);
  let best = Infinity;
  for (let r = 0; r < RUNS; r++) best = Math.min(best, run(ops) / ops);
  sink += ops;
  return best;
}

const key = compileTemplate('$request_uri');

const CASES: Case[] = [
  { name: 'round_robin (before issue 4, reference)', make: (n) => ({ policy: new OldRoundRobin(snap(servers(n))), vars: contexts() }), bookkeeping: 'old' },
  { name: 'round_robin, bookkeeping as before (active++/--)', make: (n) => ({ policy: new RoundRobinPolicy(snap(servers(n))), vars: contexts() }), bookkeeping: 'old' },
  { name: 'round_robin', make: (n) => ({ policy: new RoundRobinPolicy(snap(servers(n))), vars: contexts() }) },
  { name: 'round_robin, weights 1-5', make: (n) => ({ policy: new RoundRobinPolicy(snap(servers(n, true))), vars: contexts() }) },
  {
    name: 'round_robin + panic_threshold (not panicking)',
    make: (n) => {
      const s = snap(servers(n));
      return { policy: new PanicGuard(s, new RoundRobinPolicy(s), new PanicState('bench', 50)), vars: contexts() };
    },
  },
  { name: 'least_conn', make: (n) => ({ policy: new LeastConnPolicy(snap(servers(n))), vars: contexts() }) },
  { name: 'least_conn, weights 1-5', make: (n) => ({ policy: new LeastConnPolicy(snap(servers(n, true))), vars: contexts() }) },
  {
    name: 'least_time header',
    make: (n) => {
      const list = servers(n);
      const policy = new LeastTimePolicy(snap(list), false);
      list.forEach((s, i) => policy.timing(s, 1 + (i % 7), false));
      return { policy, vars: contexts() };
    },
  },
  { name: 'random', make: (n) => ({ policy: new RandomPolicy(snap(servers(n, true)), seededRandom(1)), vars: contexts() }) },
  { name: 'random two least_conn', make: (n) => ({ policy: new RandomTwoPolicy(snap(servers(n)), 'least_conn', false, seededRandom(2)), vars: contexts() }) },
  {
    name: 'random two least_time',
    make: (n) => {
      const list = servers(n);
      const policy = new RandomTwoPolicy(snap(list), 'least_time', false, seededRandom(3));
      list.forEach((s, i) => policy.timing(s, 1 + (i % 7), false));
      return { policy, vars: contexts() };
    },
  },
  { name: 'ip_hash', make: (n) => ({ policy: new IpHashPolicy(snap(servers(n))), vars: contexts() }) },
  { name: 'hash $request_uri', make: (n) => ({ policy: new HashPolicy(snap(servers(n)), key), vars: contexts() }) },
  { name: 'hash $request_uri consistent (ketama)', make: (n) => ({ policy: new KetamaPolicy(snap(servers(n)), key), vars: contexts() }) },
  {
    name: 'sticky cookie (bound requests) + round_robin',
    make: (n) => {
      const list = servers(n);
      const cookie = new StickyCookie({ cookie: 'srv_id', httponly: false, secure: false }, 'bench', Buffer.alloc(32, 1));
      const s = snap(list);
      return { policy: new StickyPolicy(s, new RoundRobinPolicy(s), cookie), vars: contexts((i) => `a=1; srv_id=${cookie.token(list[i % n]!)}`) };
    },
  },
];

// ------------------------------------------------------------------ Maglev, for the comparison with ketama only

class Maglev {
  readonly table: Int32Array;
  readonly size: number;
  /** `m`: the table size, a prime; it must stay the same when servers change (see sizeFor). */
  constructor(list: readonly ServerState[], m: number) {
    const n = list.length;
    this.size = m;
    const table = new Int32Array(m).fill(-1);
    const offset = list.map((s) => crc32('o' + s.address) % m);
    const skip = list.map((s) => (crc32('s' + s.address) % (m - 1)) + 1);
    const next = new Array<number>(n).fill(0);
    let filled = 0;
    while (filled < m) {
      for (let i = 0; i < n && filled < m; i++) {
        let c = (offset[i]! + next[i]! * skip[i]!) % m;
        while (table[c]! >= 0) {
          next[i]!++;
          c = (offset[i]! + next[i]! * skip[i]!) % m;
        }
        table[c] = i;
        next[i]!++;
        filled++;
      }
    }
    this.table = table;
  }
  lookup(hash: number): number {
    return this.table[hash % this.size]!;
  }
}

/** The smallest prime >= 100 n (at least 101), Maglev's recommended table size. */
function sizeFor(n: number): number {
  let m = Math.max(101, n * 100);
  while (!isPrime(m)) m++;
  return m;
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

function timeNs(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0);
}

function lookupNs(lookup: (h: number) => number, hashes: Uint32Array): number {
  const mask = hashes.length - 1;
  const ops = MIN_OPS * 5;
  let best = Infinity;
  for (let r = 0; r < RUNS + 1; r++) {
    let acc = 0;
    const ns = timeNs(() => {
      for (let i = 0; i < ops; i++) acc += lookup(hashes[i & mask]!);
    });
    sink += acc;
    if (r > 0) best = Math.min(best, ns / ops);
  }
  return best;
}

function compareHashing(): string[] {
  const rows: string[] = [];
  rows.push('| N | ketama lookup | Maglev lookup | ketama build | Maglev build | keys moved adding 1 server: ketama | Maglev | ideal |');
  rows.push('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  const keys = Array.from({ length: 20_000 }, (_, i) => `user-${i}`);
  const hashes = Uint32Array.from(Array.from({ length: KEYS }, (_, i) => crc32(keys[i]!)));
  const allHashes = keys.map(crc32);
  for (const n of SIZES) {
    const list = servers(n + 1);
    const base = list.slice(0, n);
    const w = base.map(() => 1);
    let ring!: KetamaRing;
    let mag!: Maglev;
    const ketamaBuild = timeNs(() => (ring = new KetamaRing(base, w)));
    const m = sizeFor(n + 1);
    const maglevBuild = timeNs(() => (mag = new Maglev(base, m)));
    const ketamaNs = lookupNs((h) => ring.owners[ring.find(h)]!, hashes);
    const maglevNs = lookupNs((h) => mag.lookup(h), hashes);
    const ring2 = new KetamaRing(list, [...w, 1]);
    const mag2 = new Maglev(list, m);
    const movedK = allHashes.filter((h) => ring.owners[ring.find(h)] !== ring2.owners[ring2.find(h)]).length / keys.length;
    const movedM = allHashes.filter((h) => mag.lookup(h) !== mag2.lookup(h)).length / keys.length;
    rows.push(
      `| ${n} | ${ketamaNs.toFixed(1)} ns | ${maglevNs.toFixed(1)} ns | ${(ketamaBuild / 1e6).toFixed(2)} ms | ${(maglevBuild / 1e6).toFixed(2)} ms | ${(movedK * 100).toFixed(1)}% | ${(movedM * 100).toFixed(1)}% | ${((1 / (n + 1)) * 100).toFixed(1)}% |`,
    );
  }
  return rows;
}

// ------------------------------------------------------------------ main

/** One cell, in this process: prints ns per request. */
function cell(caseIndex: number, n: number): void {
  const c = CASES[caseIndex]!;
  const { policy, vars } = c.make(n);
  process.stdout.write(measure(policy, vars, c.bookkeeping ?? 'new').toFixed(1) + '\n');
}

function main(): void {
  const at = process.argv.indexOf('--cell');
  if (at >= 0) return cell(+process.argv[at + 1]!, +process.argv[at + 2]!);
  const self = fileURLToPath(import.meta.url);
  const out: string[] = [];
  out.push(`node ${process.version}; ns per request (pick + acquire + release); one process per cell, fastest of ${RUNS} runs`);
  out.push('');
  out.push(`| policy | ${SIZES.map((n) => `N = ${n}`).join(' | ')} |`);
  out.push(`| --- | ${SIZES.map(() => '---:').join(' | ')} |`);
  CASES.forEach((c, i) => {
    const cells = SIZES.map((n) => execFileSync(process.execPath, [self, '--cell', String(i), String(n), ...(QUICK ? ['--quick'] : [])], { encoding: 'utf8' }).trim());
    out.push(`| ${c.name} | ${cells.join(' | ')} |`);
    process.stderr.write(`${c.name}: ${cells.join(' / ')}\n`);
  });
  out.push('');
  out.push('Consistent hashing: ketama (nginx-compatible) against a Maglev table (prime size >= 100 N), ring lookup only (the key hash precomputed)');
  out.push('');
  out.push(...compareHashing());
  process.stdout.write(out.join('\n') + '\n');
  if (sink === -1) process.stdout.write('');
}

main();
