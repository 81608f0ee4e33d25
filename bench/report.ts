/**
 * The markdown report: a header describing the machine and the command, the
 * done-criteria of the performance issue checked against this run, and one
 * table per scenario (medians over the runs), with fulcrum/nginx ratios.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Options, ProxyName } from './cli.js';
import type { IdleRun, RunMeasurement, Scenario, ThroughputRun, UploadRun } from './scenarios.js';
import { fmtInt, fmtKilo, fmtLatency, fmtNum, fmtPercent, fmtRatio, median } from './stats.js';
import { LOAD_CORE, LOAD_CPUS, PROXY_CORE, PROXY_CPUS, type MachineInfo } from './system.js';

export interface ProxyOutcome {
  proxy: ProxyName;
  runs: RunMeasurement[];
  /** Runs that could not be measured (wrk or a client failed); the others count. */
  runErrors: string[];
  /** Set when the proxy failed to start: its remaining runs were skipped. */
  failure?: string;
}

export interface ScenarioOutcome {
  scenario: Scenario;
  outcomes: ProxyOutcome[];
}

export interface ReportInput {
  info: MachineInfo;
  commandLine: string;
  options: Options;
  /** Proxies left out because their binary is missing, with the reason. */
  skipped: { proxy: ProxyName; reason: string }[];
  /** Deviations from the intended setup that readers must know about. */
  caveats: string[];
  results: ScenarioOutcome[];
}

export const BEGIN_MARKER = '<!-- bench:begin -->';
export const END_MARKER = '<!-- bench:end -->';

/** A load core this busy while the proxy core is not means wrk/backends were the limit. */
const SATURATED_PCT = 95;
const PROXY_NOT_SATURATED_PCT = 90;
/** CPU used by unrelated processes during a run, in % of one core, that makes it suspect. */
const OTHER_CPU_PCT = 10;

function row(cells: readonly string[]): string {
  return `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
}

function table(header: readonly string[], rows: readonly string[][]): string {
  return [row(header), row(header.map(() => '---')), ...rows.map(row)].join('\n');
}

function runsOf<K extends RunMeasurement['kind']>(o: ProxyOutcome | undefined, kind: K) {
  return (o?.runs ?? []).filter((r): r is Extract<RunMeasurement, { kind: K }> => r.kind === kind);
}

function med<T>(runs: readonly T[], pick: (r: T) => number): number {
  return median(runs.map(pick));
}

/**
 * Errors of all runs, e.g. "run 2: 3 read", flagged with ⚠; "none" when clean.
 * Runs are numbered among the measured ones.
 */
function errorCell(o: ProxyOutcome, runs: readonly { errors: string }[]): string {
  const parts = runs.flatMap((r, i) => (r.errors ? [`run ${i + 1}: ${r.errors}`] : []));
  parts.push(...o.runErrors);
  if (o.failure) parts.push(o.failure.split('\n')[0]!);
  return parts.length > 0 ? `⚠ ${parts.join('; ')}` : 'none';
}

/** Median busy percent of the load core / the proxy core. */
function coreCell(runs: readonly { coreBusy: number[] }[]): string {
  const core = (i: number) => fmtPercent(med(runs, (r) => r.coreBusy[i] ?? NaN));
  return `${core(LOAD_CORE)} / ${core(PROXY_CORE)}`;
}

function outcomeFor(s: ScenarioOutcome, proxy: ProxyName): ProxyOutcome | undefined {
  return s.outcomes.find((o) => o.proxy === proxy);
}

function failureBlocks(s: ScenarioOutcome): string[] {
  return s.outcomes
    .filter((o) => o.failure)
    .map((o) => ['```text', o.failure!, '```'].join('\n'));
}

/** "fulcrum/nginx: req/s 0.62×, p99 1.40×, CPU/req 2.10×" for each proxy vs nginx. */
function ratioLines(
  s: ScenarioOutcome,
  metrics: { label: string; value: (o: ProxyOutcome) => number }[],
): string[] {
  const nginx = outcomeFor(s, 'nginx');
  if (!nginx || nginx.runs.length === 0) return [];
  const lines: string[] = [];
  for (const o of s.outcomes) {
    if (o.proxy === 'nginx' || o.runs.length === 0) continue;
    const parts = metrics.map((m) => `${m.label} ${fmtRatio(m.value(o) / m.value(nginx))}`);
    lines.push(`**${o.proxy}/nginx** = ${parts.join(', ')}`);
  }
  return lines;
}

function throughputSection(s: ScenarioOutcome, all: readonly ScenarioOutcome[]): string {
  const sc = s.scenario;
  if (sc.kind !== 'throughput') throw new Error('not a throughput scenario');
  const header = ['proxy', 'req/s (median)'];
  if (sc.showTransfer) header.push('MB/s');
  header.push(
    'p50',
    'p99',
    'µs CPU/req',
    'RSS MiB',
    'PSS MiB',
    'upstream connects/req',
    `core ${LOAD_CPUS} / ${PROXY_CPUS} busy`,
    `core ${LOAD_CPUS}: wrk + backends`,
    'req/s per run',
    'errors',
  );

  const rows = s.outcomes.map((o) => {
    const runs = runsOf(o, 'throughput');
    if (runs.length === 0) {
      return [o.proxy, 'not measured', ...header.slice(2, -1).map(() => ''), errorCell(o, [])];
    }
    const cells = [o.proxy, fmtInt(med(runs, (r) => r.reqPerSec))];
    if (sc.showTransfer) cells.push(fmtNum(med(runs, (r) => r.transferMBps), 0));
    cells.push(
      fmtLatency(med(runs, (r) => r.p50Us)),
      fmtLatency(med(runs, (r) => r.p99Us)),
      fmtNum(med(runs, (r) => r.cpuUsPerReq), 1),
      fmtNum(med(runs, (r) => r.rssMiB), 1),
      fmtNum(med(runs, (r) => r.pssMiB), 1),
      fmtNum(med(runs, (r) => r.upstreamConnectsPerReq), 2),
      coreCell(runs),
      `${fmtPercent(med(runs, (r) => r.wrkCpuPct))} + ${fmtPercent(med(runs, (r) => r.backendCpuPct))}`,
      runs.map((r) => fmtKilo(r.reqPerSec)).join(', '),
      errorCell(o, runs),
    );
    return cells;
  });

  const notes: string[] = ratioLines(s, [
    { label: 'req/s', value: (o) => med(runsOf(o, 'throughput'), (r) => r.reqPerSec) },
    { label: 'p99', value: (o) => med(runsOf(o, 'throughput'), (r) => r.p99Us) },
    { label: 'CPU/req', value: (o) => med(runsOf(o, 'throughput'), (r) => r.cpuUsPerReq) },
  ]);
  if (sc.pinned) notes.push(...saturationNotes(s));
  if (sc.workers > 1) notes.push(...scalingNotes(s, all));
  notes.push(...disturbanceNotes(s.outcomes.flatMap((o) => runsOf(o, 'throughput'))));
  return [table(header, rows), ...notes.map((n) => `\n${n}`), ...failureBlocks(s).map((b) => `\n${b}`)].join('\n');
}

/**
 * Flags runs where the load core (wrk + backends) was saturated. If the proxy
 * core still had room, the proxy was not the bottleneck and its req/s is a
 * lower bound; if both were saturated, the load core capped it as well.
 */
function saturationNotes(s: ScenarioOutcome): string[] {
  const loadBound: string[] = [];
  const bothBusy: string[] = [];
  for (const o of s.outcomes) {
    const runs = runsOf(o, 'throughput');
    const loadSaturated = runs.filter((r) => (r.coreBusy[LOAD_CORE] ?? 0) >= SATURATED_PCT);
    const proxyIdle = loadSaturated.filter((r) => (r.coreBusy[PROXY_CORE] ?? 100) < PROXY_NOT_SATURATED_PCT).length;
    const proxyBusy = loadSaturated.length - proxyIdle;
    if (proxyIdle > 0) loadBound.push(`${o.proxy} (${proxyIdle}/${runs.length} runs)`);
    if (proxyBusy > 0) bothBusy.push(`${o.proxy} (${proxyBusy}/${runs.length} runs)`);
  }
  const notes: string[] = [];
  if (loadBound.length > 0) {
    notes.push(
      `⚠ Load-generator bound: core ${LOAD_CPUS} (wrk + backends) was ≥${SATURATED_PCT}% busy while the proxy core ` +
        `was <${PROXY_NOT_SATURATED_PCT}% for ${loadBound.join(', ')}; those req/s are lower bounds, not the proxy's limit.`,
    );
  }
  if (bothBusy.length > 0) {
    notes.push(
      `⚠ Both cores saturated for ${bothBusy.join(', ')}: the load core capped these runs too, so the ` +
        "faster proxy's advantage is understated (compare µs CPU/req, which does not depend on the cap).",
    );
  }
  return notes;
}

/** Runs where something outside the benchmark took CPU (other processes, the hypervisor). */
function disturbanceNotes(runs: readonly (ThroughputRun | UploadRun)[]): string[] {
  const notes: string[] = [];
  const disturbed = runs.filter((r) => r.otherCpuPct >= OTHER_CPU_PCT);
  if (disturbed.length > 0) {
    const worst = Math.max(...disturbed.map((r) => r.otherCpuPct));
    notes.push(
      `⚠ Other processes on the machine used ≥${OTHER_CPU_PCT}% of a core in ${disturbed.length}/${runs.length} runs ` +
        `(up to ${fmtPercent(worst)}): those runs are disturbed; rerun on a quiet machine.`,
    );
  }
  const steal = median(runs.map((r) => ('stealPct' in r ? r.stealPct : NaN)));
  if (steal >= 1) notes.push(`⚠ Hypervisor steal: ${fmtPercent(steal)} of CPU time (median): numbers are noisier.`);
  return notes;
}

/** 2 workers vs 1 worker, using the 1-worker scenario with the same load (c200, capped1) of this session. */
function scalingNotes(s: ScenarioOutcome, all: readonly ScenarioOutcome[]): string[] {
  const baselineName = s.scenario.scalingBaseline;
  const baseline = all.find((x) => x.scenario.name === baselineName);
  if (!baselineName) return [];
  if (!baseline) return [`(Scaling vs 1 worker not shown: run the ${baselineName} scenario in the same session.)`];
  const parts: string[] = [];
  for (const o of s.outcomes) {
    const two = med(runsOf(o, 'throughput'), (r) => r.reqPerSec);
    const one = med(runsOf(outcomeFor(baseline, o.proxy), 'throughput'), (r) => r.reqPerSec);
    if (Number.isFinite(two) && Number.isFinite(one)) parts.push(`${o.proxy} ${fmtRatio(two / one)}`);
  }
  const how = baseline.scenario.pinned ? `${s.scenario.workers} workers unpinned / 1 worker pinned` : `${s.scenario.workers} workers / 1 worker`;
  const notes = parts.length > 0 ? [`**Scaling, ${how} (${s.scenario.name} / ${baselineName}, same run):** ${parts.join(', ')}`] : [];
  const spread = s.outcomes
    .map((o) => {
      const samples = runsOf(o, 'throughput').flatMap((r) => (r.connectionsPerProcess === undefined ? [] : [r.connectionsPerProcess.join('/') || 'none']));
      return samples.length > 0 ? `${o.proxy} ${samples.join(', ')}` : '';
    })
    .filter(Boolean);
  if (spread.length > 0) notes.push(`**Client connections per process halfway through each run** (HAProxy's threads share one process): ${spread.join('; ')}`);
  return notes;
}

function uploadSection(s: ScenarioOutcome): string {
  const header = [
    'proxy',
    'MB/s (median)',
    'RSS before MiB',
    'peak RSS growth MiB',
    'RSS after MiB',
    'CPU s/GB',
    `core ${LOAD_CPUS} / ${PROXY_CPUS} busy`,
    'complete at backend',
    'errors',
  ];
  const rows = s.outcomes.map((o) => {
    const runs: UploadRun[] = runsOf(o, 'upload');
    if (runs.length === 0) return [o.proxy, 'not measured', '', '', '', '', '', '', errorCell(o, [])];
    return [
      o.proxy,
      fmtNum(med(runs, (r) => r.mbPerSec), 0),
      fmtNum(med(runs, (r) => r.rssBeforeMiB), 1),
      fmtNum(med(runs, (r) => r.peakGrowthMiB), 1),
      fmtNum(med(runs, (r) => r.rssAfterMiB), 1),
      fmtNum(med(runs, (r) => r.cpuSecPerGB), 2),
      coreCell(runs),
      `${runs.reduce((n, r) => n + r.verified, 0)}/${runs.reduce((n, r) => n + r.sent, 0)}`,
      errorCell(o, runs),
    ];
  });
  const notes = ratioLines(s, [
    { label: 'MB/s', value: (o) => med(runsOf(o, 'upload'), (r) => r.mbPerSec) },
    { label: 'CPU/GB', value: (o) => med(runsOf(o, 'upload'), (r) => r.cpuSecPerGB) },
    { label: 'peak RSS growth', value: (o) => med(runsOf(o, 'upload'), (r) => r.peakGrowthMiB) },
  ]);
  notes.push(...disturbanceNotes(s.outcomes.flatMap((o) => runsOf(o, 'upload'))));
  return [table(header, rows), ...notes.map((n) => `\n${n}`), ...failureBlocks(s).map((b) => `\n${b}`)].join('\n');
}

function idleSection(s: ScenarioOutcome): string {
  const header = ['proxy', 'connections held', 'RSS before MiB', 'RSS idle MiB', 'growth MiB', 'KiB/conn', 'errors'];
  const rows = s.outcomes.map((o) => {
    const runs: IdleRun[] = runsOf(o, 'idle');
    if (runs.length === 0) return [o.proxy, 'not measured', '', '', '', '', errorCell(o, [])];
    return [
      o.proxy,
      fmtInt(med(runs, (r) => r.held)),
      fmtNum(med(runs, (r) => r.rssBeforeMiB), 1),
      fmtNum(med(runs, (r) => r.rssIdleMiB), 1),
      fmtNum(med(runs, (r) => r.growthMiB), 1),
      fmtNum(med(runs, (r) => r.kibPerConn), 2),
      errorCell(o, runs),
    ];
  });
  const notes = ratioLines(s, [{ label: 'growth', value: (o) => med(runsOf(o, 'idle'), (r) => r.growthMiB) }]);
  return [table(header, rows), ...notes.map((n) => `\n${n}`), ...failureBlocks(s).map((b) => `\n${b}`)].join('\n');
}

function scenarioSection(s: ScenarioOutcome, all: readonly ScenarioOutcome[]): string {
  const sc = s.scenario;
  const placement = sc.pinned
    ? `proxy pinned to core ${PROXY_CPUS}, ${sc.workers} worker`
    : `proxy UNPINNED (any core), ${sc.workers} workers`;
  const body =
    sc.kind === 'throughput' ? throughputSection(s, all) : sc.kind === 'upload' ? uploadSection(s) : idleSection(s);
  return [`### \`${sc.name}\` — ${sc.title}`, '', `${sc.what} (${placement}.)`, '', body].join('\n');
}

/** The done-criteria of the performance issue, evaluated on this run. */
function goalsSection(input: ReportInput): string {
  const get = (name: string) => input.results.find((s) => s.scenario.name === name);
  const tput = (name: string, proxy: ProxyName, pick: (r: ThroughputRun) => number) =>
    med(runsOf(get(name) && outcomeFor(get(name)!, proxy), 'throughput'), pick);
  const verdict = (ok: boolean | undefined) => (ok === undefined ? 'not measured' : ok ? '✅ pass' : '❌ fail');
  const check = (value: number, ok: (v: number) => boolean) => (Number.isFinite(value) ? ok(value) : undefined);

  const rows: string[][] = [];
  for (const name of ['c50', 'c200']) {
    const ratio = tput(name, 'fulcrum', (r) => r.reqPerSec) / tput(name, 'nginx', (r) => r.reqPerSec);
    rows.push([`req/s at ${name}, fulcrum / nginx (1 worker each)`, '≥ 0.60×', fmtRatio(ratio), verdict(check(ratio, (v) => v >= 0.6))]);
  }
  const p99 = tput('c50', 'fulcrum', (r) => r.p99Us) / tput('c50', 'nginx', (r) => r.p99Us);
  rows.push(['p99 at c50, fulcrum / nginx', '≤ 2.00×', fmtRatio(p99), verdict(check(p99, (v) => v <= 2))]);

  // "RSS after the run": the largest median RSS over the 1-worker throughput scenarios run.
  const rssByScenario = input.results
    .filter((s) => s.scenario.kind === 'throughput' && s.scenario.workers === 1)
    .map((s) => ({ name: s.scenario.name, rss: tput(s.scenario.name, 'fulcrum', (r) => r.rssMiB) }))
    .filter((x) => Number.isFinite(x.rss));
  const worst = rssByScenario.sort((a, b) => b.rss - a.rss)[0];
  rows.push([
    'fulcrum RSS after a run (1 worker, largest over scenarios)',
    '≤ 80 MiB',
    worst ? `${fmtNum(worst.rss)} MiB (${worst.name})` : 'n/a',
    verdict(worst ? worst.rss <= 80 : undefined),
  ]);

  const idle = med(runsOf(get('idle10k') && outcomeFor(get('idle10k')!, 'fulcrum'), 'idle'), (r) => r.growthMiB);
  rows.push(['fulcrum RSS growth with 10,000 idle connections', '≤ 60 MiB', `${fmtNum(idle)} MiB`, verdict(check(idle, (v) => v <= 60))]);

  const upload = med(runsOf(get('upload1gb') && outcomeFor(get('upload1gb')!, 'fulcrum'), 'upload'), (r) => r.peakGrowthMiB);
  rows.push(['fulcrum peak RSS growth during a 1 GB upload', '< 50 MiB', `${fmtNum(upload)} MiB`, verdict(check(upload, (v) => v < 50))]);

  const scaling = tput('capped2', 'fulcrum', (r) => r.reqPerSec) / tput('capped1', 'fulcrum', (r) => r.reqPerSec);
  rows.push([
    'fulcrum req/s, 2 workers / 1 worker (capped2 / capped1: each worker held to the same CPU quota)',
    '≥ 1.80×',
    fmtRatio(scaling),
    verdict(check(scaling, (v) => v >= 1.8)),
  ]);

  return [
    '### Done criteria (fulcrum, this run)',
    '',
    table(['criterion', 'target', 'measured', 'result'], rows),
  ].join('\n');
}

function headerSection(input: ReportInput): string {
  const { info, options } = input;
  const lines = [
    `Run on ${info.date} with \`${input.commandLine}\``,
    '',
    `- Machine: ${info.nproc} CPUs (\`nproc\`), ${info.cpuModel}, Linux ${info.kernel}, cpuidle ${info.idle}`,
    `- Versions: Node ${info.node}, nginx ${info.nginx}, HAProxy ${info.haproxy}, wrk ${info.wrk}, fulcrum ${info.fulcrum}`,
    `- Placement: proxy under test on core ${PROXY_CPUS} (\`taskset -c ${PROXY_CPUS}\`); wrk, the three nginx backends and the harness's clients on core ${LOAD_CPUS}. \`workers2\` runs the proxies unpinned; \`capped1\`/\`capped2\` run them unpinned with every worker held to a CPU quota.`,
    `- Method: ${options.runs} run(s) per proxy per scenario, alternating ${options.proxies.join(' → ')}; each run starts the proxy fresh, ${options.warmupSec} s unmeasured warm-up, ${options.durationSec} s measured; tables show medians.`,
    '- CPU and memory cover the whole proxy process tree (master + workers). RSS sums VmRSS; PSS splits shared pages.',
  ];
  for (const s of input.skipped) lines.push(`- Skipped ${s.proxy}: ${s.reason}`);
  for (const c of input.caveats) lines.push(`- ⚠ ${c}`);
  return lines.join('\n');
}

/** The report body, which goes under a "Results" heading (stdout) or between the doc's markers. */
export function renderReport(input: ReportInput): string {
  return [
    headerSection(input),
    '',
    goalsSection(input),
    '',
    ...input.results.flatMap((s) => [scenarioSection(s, input.results), '']),
  ].join('\n');
}

/**
 * Replaces what lies between the markers in the doc, keeping everything else.
 * Refuses to write if the markers are missing or out of order, rather than
 * guessing where the results belong.
 */
export function writeResultsIntoDoc(docPath: string, markdown: string): void {
  const doc = readFileSync(docPath, 'utf8');
  const begin = doc.indexOf(BEGIN_MARKER);
  const end = doc.indexOf(END_MARKER);
  if (begin < 0 || end < 0 || end < begin) {
    throw new Error(`${docPath}: needs ${BEGIN_MARKER} followed by ${END_MARKER}`);
  }
  const updated = `${doc.slice(0, begin + BEGIN_MARKER.length)}\n${markdown.trim()}\n${doc.slice(end)}`;
  writeFileSync(docPath, updated);
}
