/**
 * npm run bench:routing — nanoseconds per lookup of the two routing steps a
 * request takes before balancing, at 10, 100, 1,000 and 10,000 entries,
 * printed as a Markdown table (docs/benchmarks.md, "Routing"):
 *
 * - location matching (`LocationMatcher.find`, src/router/locations.ts) for
 *   `= /exact`, `/prefix` and `^~ /prefix` locations, and for regex
 *   locations, which nginx (and so fulcrum) tries one by one in
 *   configuration order: their row is expected to grow with N;
 * - server_name matching (`ServerNameMatcher.find`, src/router/server-names.ts)
 *   for exact names and for wildcards at either end, with the linear
 *   wildcard scan fulcrum used before as a reference.
 *
 * Lookups cycle through 4,096 precomputed paths or hosts that hit 16 entries
 * spread over the whole table (see `spread`; for prefixes, paths longer than
 * the prefix, as real request paths are). Each cell runs in its own process (no
 * row's code is optimised for another's shapes) and is the fastest of 15
 * runs of at least 50 ms each after a warm-up: the fastest run is the one
 * least disturbed by other processes on a shared machine.
 *
 * Options: --quick (fewer runs, for a smoke test).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LocationMatcher, compileNginxRegex, parseLocationMatch, type MatchableLocation } from '../src/router/locations.js';
import { ServerNameMatcher } from '../src/router/server-names.js';

const QUICK = process.argv.includes('--quick');
const RUNS = QUICK ? 3 : 15;
const RUN_MS = QUICK ? 10 : 50;
const SIZES = [10, 100, 1000, 10_000];
const LOOKUPS = 4096;

/** A lookup function over precomputed inputs, and the inputs. */
interface Subject {
  lookup(input: string): unknown;
  inputs: string[];
}

interface Case {
  name: string;
  make(n: number): Subject;
}

/**
 * Index of the entry the i-th lookup hits: one of 16 entries spread over the
 * whole table (not the first few), the same number of distinct targets at
 * every N, so a row compares the lookup's cost at different table sizes, not
 * the cache footprint of touching more entries (real traffic has a few hot
 * locations and hosts).
 */
const TARGETS = 16;
const spread = (i: number, n: number): number => {
  const targets = Math.min(TARGETS, n);
  return Math.floor(((i % targets) + 0.5) * (n / targets));
};

function locationMatcher(texts: string[]): LocationMatcher<string> {
  return new LocationMatcher(
    texts.map((text): MatchableLocation<string> => {
      const match = parseLocationMatch(text);
      if ('error' in match) throw new Error(match.error);
      const caseless = match.kind === 'regex_caseless';
      const regex = match.kind === 'regex' || caseless ? compileNginxRegex(match.pattern, caseless) : undefined;
      return { match, regex, children: undefined, value: text };
    }),
  );
}

/** `path(i, k)`: the k-th lookup's path, which hits entry i. */
function locations(n: number, entry: (i: number) => string, path: (i: number, k: number) => string): Subject {
  const matcher = locationMatcher(['/', ...Array.from({ length: n }, (_, i) => entry(i))]);
  return { lookup: (p) => matcher.find(p), inputs: Array.from({ length: LOOKUPS }, (_, k) => path(spread(k, n), k)) };
}

/** The wildcard scan of src/router/server-names.ts before the wildcard maps (reference): every wildcard tried, longest first. */
class LinearWildcards {
  private readonly leading: { suffix: string; server: string }[] = [];
  private readonly trailing: { prefix: string; server: string }[] = [];
  constructor(names: string[]) {
    for (const name of names) {
      if (name.startsWith('*.')) this.leading.push({ suffix: name.slice(1), server: name });
      else if (name.endsWith('.*')) this.trailing.push({ prefix: name.slice(0, -1), server: name });
    }
    this.leading.sort((a, b) => b.suffix.length - a.suffix.length);
    this.trailing.sort((a, b) => b.prefix.length - a.prefix.length);
  }
  find(host: string): string | undefined {
    for (const w of this.leading) if (host.length > w.suffix.length && host.endsWith(w.suffix)) return w.server;
    for (const w of this.trailing) if (host.length > w.prefix.length && host.startsWith(w.prefix)) return w.server;
    return undefined;
  }
}

function serverNames(n: number, name: (i: number) => string, host: (i: number) => string): Subject {
  const matcher = new ServerNameMatcher(Array.from({ length: n }, (_, i) => ({ names: [name(i)], server: `s${i}` })), 'default');
  return { lookup: (h) => matcher.find(h), inputs: Array.from({ length: LOOKUPS }, (_, i) => host(spread(i, n))) };
}

const CASES: Case[] = [
  { name: 'location `= /exact`', make: (n) => locations(n, (i) => `= /svc${i}/health`, (i) => `/svc${i}/health`) },
  { name: 'location `/prefix` (longest prefix)', make: (n) => locations(n, (i) => `/svc${i}/`, (i, k) => `/svc${i}/items/${k}/detail`) },
  { name: 'location `^~ /prefix`', make: (n) => locations(n, (i) => `^~ /static${i}/`, (i, k) => `/static${i}/css/site-${k}.css`) },
  { name: 'location `/prefix`, no match (falls back to `/`)', make: (n) => locations(n, (i) => `/svc${i}/`, (i, k) => `/other/${i}/page-${k}`) },
  { name: 'location `~ regex` (tried in order, as nginx)', make: (n) => locations(n, (i) => `~ ^/re${i}/[0-9]+$`, (i) => `/re${i}/42`) },
  { name: 'server_name exact', make: (n) => serverNames(n, (i) => `host${i}.example.com`, (i) => `host${i}.example.com`) },
  { name: 'server_name `*.example` (leading wildcard)', make: (n) => serverNames(n, (i) => `*.tenant${i}.example.com`, (i) => `www.tenant${i}.example.com`) },
  { name: 'server_name `mail.*` (trailing wildcard)', make: (n) => serverNames(n, (i) => `app${i}.*`, (i) => `app${i}.eu.example.net`) },
  {
    name: 'server_name `*.example`, linear scan (before, reference)',
    make: (n) => {
      const linear = new LinearWildcards(Array.from({ length: n }, (_, i) => `*.tenant${i}.example.com`));
      return { lookup: (h) => linear.find(h), inputs: Array.from({ length: LOOKUPS }, (_, i) => `www.tenant${spread(i, n)}.example.com`) };
    },
  },
];

let sink = 0;

function measure(subject: Subject): number {
  const { lookup, inputs } = subject;
  const mask = inputs.length - 1;
  for (const input of inputs) if (lookup(input) === undefined) throw new Error(`no match for ${input}`);
  const run = (ops: number): number => {
    let hits = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < ops; i++) if (lookup(inputs[i & mask]!) !== undefined) hits++;
    const ns = Number(process.hrtime.bigint() - t0);
    sink += hits;
    return ns;
  };
  // As many lookups as take RUN_MS (regex rows at large N are slow per lookup).
  let ops = 1000;
  while (run(ops) < RUN_MS * 1e6 && ops < 1e8) ops *= 2;
  let best = Infinity;
  for (let r = 0; r < RUNS; r++) best = Math.min(best, run(ops) / ops);
  return best;
}

/** One cell, in this process: prints ns per lookup. */
function cell(caseIndex: number, n: number): void {
  process.stdout.write(measure(CASES[caseIndex]!.make(n)).toFixed(1) + '\n');
}

function main(): void {
  const at = process.argv.indexOf('--cell');
  if (at >= 0) return cell(+process.argv[at + 1]!, +process.argv[at + 2]!);
  const self = fileURLToPath(import.meta.url);
  const out: string[] = [];
  out.push(`node ${process.version}; ns per lookup; one process per cell, fastest of ${RUNS} runs`);
  out.push('');
  out.push(`| lookup | ${SIZES.map((n) => `N = ${n.toLocaleString('en-US')}`).join(' | ')} |`);
  out.push(`| --- | ${SIZES.map(() => '---:').join(' | ')} |`);
  CASES.forEach((c, i) => {
    const cells = SIZES.map((n) => execFileSync(process.execPath, [self, '--cell', String(i), String(n), ...(QUICK ? ['--quick'] : [])], { encoding: 'utf8' }).trim());
    out.push(`| ${c.name} | ${cells.join(' | ')} |`);
    process.stderr.write(`${c.name}: ${cells.join(' / ')}\n`);
  });
  process.stdout.write(out.join('\n') + '\n');
  if (sink === -1) process.stdout.write('');
}

main();
