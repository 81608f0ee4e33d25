/**
 * `npm run bench`: fulcrum vs nginx vs HAProxy on the same backends, in the
 * same session, alternating proxies run by run. Progress goes to stderr, the
 * markdown report to stdout (and into docs/benchmarks.md with --write).
 * See bench/README.md. Installs nothing: needs Debian's nginx, haproxy, wrk.
 */
import { chmodSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackends } from './backends.js';
import { makeTlsFiles } from './tls.js';
import { parseArgs, USAGE, UsageError, type Options, type ProxyName } from './cli.js';
import { DOC_PATH } from './paths.js';
import { installCleanupHandlers, killLeftovers, startedCount } from './processes.js';
import { clockTicksPerSecond } from './procfs.js';
import { fulcrumDef, haproxyDef, nginxDef, StartError, type ProxyDef } from './proxies.js';
import { renderReport, writeResultsIntoDoc, type ProxyOutcome, type ScenarioOutcome } from './report.js';
import { measureRun, runsIn, SCENARIOS, usesTls, type RunMeasurement, type Session } from './scenarios.js';
import { fmtInt, fmtLatency, fmtNum, fmtPercent } from './stats.js';
import { commandExists, LOAD_CPUS, machineInfo, pinSelf, raiseOpenFileLimit } from './system.js';

/** Plenty for 10,000 idle connections on both sides plus upstream connections... */
const WANTED_OPEN_FILES = 65536;
/** ...and the least that lets idle10k work at all (each process needs 10,000 + a few). */
const NEEDED_OPEN_FILES = 12_000;

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

/** The command line as typed, for the report header. */
function commandLine(): string {
  const args = process.argv.slice(2).map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`));
  const base = process.env.npm_lifecycle_event === 'bench' ? 'npm run bench' : 'node dist/bench/run.js';
  return args.length > 0 ? `${base}${base.startsWith('npm') ? ' --' : ''} ${args.join(' ')}` : base;
}

/** A temp dir that nginx workers (running as nobody) can read. tmpfs when available. */
function makeTempDir(): string {
  const parent = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(join(parent, 'fulcrum-bench-'));
  chmodSync(dir, 0o755);
  return dir;
}

function checkRequiredTools(): void {
  const missing = ['nginx', 'wrk', 'taskset'].filter((t) => !commandExists(t));
  if (missing.length > 0) {
    throw new Error(
      `missing ${missing.join(', ')}: the backends need nginx, the load needs wrk, pinning needs taskset.\n` +
        '  apt-get install nginx haproxy wrk util-linux',
    );
  }
}

function proxyDefs(options: Options): { defs: ProxyDef[]; skipped: { proxy: ProxyName; reason: string }[] } {
  const all: Record<ProxyName, ProxyDef> = {
    fulcrum: fulcrumDef(options.fulcrumCmd),
    nginx: nginxDef,
    haproxy: haproxyDef,
  };
  const defs: ProxyDef[] = [];
  const skipped: { proxy: ProxyName; reason: string }[] = [];
  for (const name of options.proxies) {
    const reason = all[name].unavailable();
    if (reason) {
      log(`${name}: skipped (${reason})`);
      skipped.push({ proxy: name, reason });
    } else {
      defs.push(all[name]);
    }
  }
  return { defs, skipped };
}

/** One progress line per measured run. */
function describe(m: RunMeasurement): string {
  const err = m.errors ? `  ⚠ ${m.errors}` : '';
  switch (m.kind) {
    case 'throughput':
      return (
        `${fmtInt(m.reqPerSec)} req/s  p50 ${fmtLatency(m.p50Us)}  p99 ${fmtLatency(m.p99Us)}  ` +
        `${fmtNum(m.cpuUsPerReq)} µs CPU/req  RSS ${fmtNum(m.rssMiB)} MiB  ` +
        `cores ${m.coreBusy.map(fmtPercent).join('/')} (wrk ${fmtPercent(m.wrkCpuPct)}, ` +
        `backends ${fmtPercent(m.backendCpuPct)})  other ${fmtPercent(m.otherCpuPct)}${err}`
      );
    case 'upload':
      return (
        `${fmtNum(m.mbPerSec, 0)} MB/s  peak RSS growth ${fmtNum(m.peakGrowthMiB)} MiB  ` +
        `backend saw ${m.verified}/${m.sent} complete  cores ${m.coreBusy.map(fmtPercent).join('/')}  ` +
        `other ${fmtPercent(m.otherCpuPct)}${err}`
      );
    case 'idle':
      return `${fmtInt(m.held)} held  growth ${fmtNum(m.growthMiB)} MiB  ${fmtNum(m.kibPerConn, 2)} KiB/conn${err}`;
  }
}

async function runScenarios(session: Session, options: Options, defs: ProxyDef[]): Promise<ScenarioOutcome[]> {
  const results: ScenarioOutcome[] = [];
  for (const name of options.scenarios) {
    const scenario = SCENARIOS[name];
    const scenarioDefs = defs.filter((d) => runsIn(scenario, d.name));
    const outcomes: ProxyOutcome[] = scenarioDefs.map((d) => ({ proxy: d.name, runs: [], runErrors: [] }));
    log(`\n== ${name}: ${scenario.title}`);
    for (let run = 1; run <= options.runs; run++) {
      // A B C, A B C, ...: slow drift (thermal, noisy neighbours) hits all proxies alike.
      for (const [i, def] of scenarioDefs.entries()) {
        const outcome = outcomes[i]!;
        if (outcome.failure) continue;
        const prefix = `[${name} ${run}/${options.runs}] ${def.name}:`;
        try {
          const m = await measureRun(session, scenario, def);
          outcome.runs.push(m);
          log(`${prefix} ${describe(m)}`);
        } catch (err) {
          if (err instanceof StartError) {
            outcome.failure = err.message; // deterministic: skip this proxy's remaining runs here
            log(`${prefix} ${err.message}`);
          } else {
            const message = `run ${run} failed: ${errorText(err)}`;
            outcome.runErrors.push(message); // possibly transient: keep going
            log(`${prefix} ${message}`);
          }
        }
      }
    }
    results.push({ scenario, outcomes });
  }
  return results;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function main(): Promise<number> {
  let options: Options | 'help';
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      log(`bench: ${err.message}\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  if (options === 'help') {
    log(USAGE);
    return 0;
  }
  checkRequiredTools();

  const tmp = makeTempDir();
  const keepTemp = options.keepTemp;
  installCleanupHandlers(() => {
    if (!keepTemp) rmSync(tmp, { recursive: true, force: true });
  });
  if (!pinSelf(LOAD_CPUS)) log(`warning: could not pin the harness to core ${LOAD_CPUS}`);
  const limit = raiseOpenFileLimit(WANTED_OPEN_FILES);
  if (limit.soft < NEEDED_OPEN_FILES && options.scenarios.includes('idle10k')) {
    log(`warning: open-file limit is ${limit.soft}; idle10k needs ${NEEDED_OPEN_FILES} (raise ulimit -n)`);
  }

  const { defs, skipped } = proxyDefs(options);
  if (defs.length === 0) throw new Error('no proxy to benchmark');
  const info = machineInfo();
  log(`bench: ${info.cpuModel}, ${info.nproc} CPUs, open-file limit ${limit.soft}; temp dir ${tmp}${keepTemp ? ' (kept)' : ''}`);
  if (info.nproc < 2) log('warning: fewer than 2 CPUs: proxy and load generator will share a core');

  const backends = await startBackends(tmp);
  log(`backends: nginx on ports ${backends.ports.join(', ')} (core ${LOAD_CPUS})`);
  const session: Session = {
    tmp,
    backends,
    clockTicks: clockTicksPerSecond(),
    durationSec: options.durationSec,
    warmupSec: options.warmupSec,
    tls: options.scenarios.some((name) => usesTls(SCENARIOS[name])) ? await makeTlsFiles(tmp) : undefined,
  };

  const results = await runScenarios(session, options, defs);
  await backends.proc.stop();

  const caveats = defs.flatMap((d) => d.caveats?.() ?? []);
  const markdown = renderReport({ info, commandLine: commandLine(), options, skipped, caveats, results });
  process.stdout.write(`## Benchmark results\n\n${markdown}\n`);
  if (options.write) {
    writeResultsIntoDoc(DOC_PATH, markdown);
    log(`wrote results into ${DOC_PATH}`);
  }

  const leftovers = killLeftovers();
  if (leftovers.length > 0) log(`warning: process groups were still alive: ${leftovers.join(', ')} (killed)`);
  else log(`all ${startedCount()} processes the harness started are gone`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`bench: ${errorText(err)}`);
    process.exit(1);
  },
);
