/** Command-line options of `npm run bench`. */

export const SCENARIO_NAMES = [
  'c50',
  'c200',
  'browser',
  'https',
  'seed',
  'c1',
  'newconn',
  'newconn-tls',
  '1mb',
  'upload100mb',
  'upload1gb',
  'idle10k',
  'workers2',
  'capped1',
  'capped2',
] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

export const PROXY_NAMES = ['fulcrum', 'nginx', 'haproxy'] as const;
export type ProxyName = (typeof PROXY_NAMES)[number];

export const DEFAULT_FULCRUM_CMD = 'bin/fulcrum.js start --config {config}';

export interface Options {
  /** Alternations A B C per scenario; the report shows the median. */
  runs: number;
  /** Seconds per measured wrk run. */
  durationSec: number;
  /** Seconds of unmeasured load before each measured run (JIT, connection pools). */
  warmupSec: number;
  scenarios: ScenarioName[];
  proxies: ProxyName[];
  write: boolean;
  /** How to start fulcrum; {config} is replaced by the config file path. */
  fulcrumCmd: string;
  keepTemp: boolean;
}

export const USAGE = `usage: npm run bench -- [options]
  --runs N              alternations per scenario (default 3)
  --duration SECONDS    length of each measured wrk run (default 10)
  --warmup SECONDS      unmeasured load before each run (default 2, 1 with --quick)
  --quick               1 run x 3 s, for smoke checks
  --scenarios a,b,c     subset of: ${SCENARIO_NAMES.join(', ')}
  --proxies a,b         subset of: ${PROXY_NAMES.join(', ')} (default: all whose binary exists)
  --write               replace the results section of docs/benchmarks.md
  --fulcrum-cmd "CMD"   how to start fulcrum, run from the repo root through sh;
                        {config} is replaced by the config path (appended as
                        --config FILE if absent). Default: "${DEFAULT_FULCRUM_CMD}"
  --keep-temp           keep the temp dir (generated configs, logs) for inspection
  --help`;

export class UsageError extends Error {}

function parseList<T extends string>(value: string, allowed: readonly T[], what: string): T[] {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const item of items) {
    if (!allowed.includes(item as T)) throw new UsageError(`unknown ${what} "${item}" (known: ${allowed.join(', ')})`);
  }
  if (items.length === 0) throw new UsageError(`empty ${what} list`);
  // Keep the canonical order: workers2 compares against c200, capped2 against capped1, which must run first.
  return allowed.filter((a) => items.includes(a));
}

function positiveNumber(value: string, flag: string, allowZero = false): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || (n === 0 && !allowZero)) {
    throw new UsageError(`${flag} needs a positive number, got "${value}"`);
  }
  return n;
}

export function parseArgs(argv: readonly string[]): Options | 'help' {
  const given = new Map<string, string | true>();
  const valued = new Set(['--runs', '--duration', '--warmup', '--scenarios', '--proxies', '--fulcrum-cmd']);
  const flags = new Set(['--quick', '--write', '--keep-temp', '--help', '-h']);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    if (valued.has(name)) {
      const value = eq > 0 && name !== arg ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new UsageError(`${name} needs a value`);
      given.set(name, value);
    } else if (flags.has(arg)) {
      given.set(arg, true);
    } else {
      throw new UsageError(`unknown argument "${arg}"`);
    }
  }
  if (given.has('--help') || given.has('-h')) return 'help';

  const quick = given.has('--quick');
  const str = (flag: string) => {
    const v = given.get(flag);
    return typeof v === 'string' ? v : undefined;
  };
  const runs = str('--runs');
  const duration = str('--duration');
  const warmup = str('--warmup');
  const scenarios = str('--scenarios');
  const proxies = str('--proxies');
  let fulcrumCmd = str('--fulcrum-cmd') ?? DEFAULT_FULCRUM_CMD;
  if (!fulcrumCmd.includes('{config}')) fulcrumCmd += ' --config {config}';

  const runCount = runs !== undefined ? positiveNumber(runs, '--runs') : quick ? 1 : 3;
  if (!Number.isInteger(runCount)) throw new UsageError('--runs needs an integer');
  return {
    runs: runCount,
    durationSec: duration !== undefined ? positiveNumber(duration, '--duration') : quick ? 3 : 10,
    warmupSec: warmup !== undefined ? positiveNumber(warmup, '--warmup', true) : quick ? 1 : 2,
    scenarios: scenarios !== undefined ? parseList(scenarios, SCENARIO_NAMES, 'scenario') : [...SCENARIO_NAMES],
    proxies: proxies !== undefined ? parseList(proxies, PROXY_NAMES, 'proxy') : [...PROXY_NAMES],
    write: given.has('--write'),
    fulcrumCmd,
    keepTemp: given.has('--keep-temp'),
  };
}
