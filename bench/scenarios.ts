/**
 * What each scenario does, and how one run of one proxy in it is measured.
 * Every run starts the proxy fresh, warms it up (unmeasured), measures, and
 * stops it, so runs are independent and alternating proxies is cheap.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { backendAccepts, ONE_MB_BYTES, uploadLogOffset, waitForUploadLog, type Backends } from './backends.js';
import type { ProxyName, ScenarioName } from './cli.js';
import type { IdleFinal, IdleReady } from './clients/idle.js';
import type { UploadReport } from './clients/upload.js';
import { CLIENTS_DIR } from './paths.js';
import { ManagedProcess, ownProcessGroups, runBounded } from './processes.js';
import {
  benchmarkCpuTicks,
  childPids,
  clientConnectionsPerProcess,
  coreBusyPercent,
  readCoreTimes,
  reapedChildTicks,
  RssSampler,
  sampleTree,
  stealPercent,
  treePssKb,
} from './procfs.js';
import { CpuCaps } from './cpu-caps.js';
import { startProxy, StartError, type ProxyDef, type RunningProxy } from './proxies.js';
import { LOAD_CPUS } from './system.js';
import type { TlsFiles } from './tls.js';
import { runWrk, wrkErrorSummary, type WrkLoad } from './wrk.js';

interface ScenarioBase {
  name: ScenarioName;
  title: string;
  /** One sentence for the report: what this measures. */
  what: string;
  workers: number;
  /** Pinned to the proxy core (else unpinned: any core). */
  pinned: boolean;
  /** With several workers: the 1-worker scenario of the same load that scaling is measured against. */
  scalingBaseline?: ScenarioName;
  /** Each worker capped to this much of one core (bench/cpu-caps.ts); unset: uncapped. */
  cpuCapCores?: number;
}

export interface ThroughputScenario extends ScenarioBase {
  kind: 'throughput';
  path: string;
  threads: number;
  connections: number;
  headers?: string[];
  /** Over TLS (https://), with the session's certificate. */
  tls?: boolean;
  /**
   * The seed's own server block (bench/configs/seed.conf) instead of the
   * shared proxy.conf; it is nginx configuration, so HAProxy sits it out.
   */
  seed?: boolean;
  /** Report MB/s too (large responses). */
  showTransfer?: boolean;
}

export interface UploadScenario extends ScenarioBase {
  kind: 'upload';
  bytes: number;
  count: number;
}

export interface IdleScenario extends ScenarioBase {
  kind: 'idle';
  connections: number;
}

export type Scenario = ThroughputScenario | UploadScenario | IdleScenario;

const single = { workers: 1, pinned: true } as const;

/**
 * The scaling scenarios' per-worker CPU quota: low enough that two capped
 * workers plus wrk and the backends fit on 2 cores with room to spare.
 */
const CAP_PERCENT = 30;
const capped = {
  kind: 'throughput',
  pinned: false,
  cpuCapCores: CAP_PERCENT / 100,
  path: '/',
  threads: 2,
  connections: 200,
} as const;

/** What a desktop browser sends with a page request (Host aside): the common shape of real request heads. */
const BROWSER_HEADERS = [
  'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8',
  'Accept-Language: en-US,en;q=0.9',
  'Accept-Encoding: gzip, deflate, br',
  'Cookie: session=8f3a2b1c9d0e4f5a6b7c8d9e0f1a2b3c; theme=dark; _ga=GA1.2.123456789.1234567890',
  'Referer: https://example.com/app/dashboard',
  'Sec-Fetch-Dest: document',
  'Sec-Fetch-Mode: navigate',
  'Sec-Fetch-Site: same-origin',
  'Upgrade-Insecure-Requests: 1',
  'Cache-Control: max-age=0',
];

export const SCENARIOS: Record<ScenarioName, Scenario> = {
  c50: {
    ...single,
    name: 'c50',
    kind: 'throughput',
    title: 'Small responses, 50 connections',
    what: 'GET / (13-byte body) over 50 keep-alive connections (wrk -t1 -c50).',
    path: '/',
    threads: 1,
    connections: 50,
  },
  c200: {
    ...single,
    name: 'c200',
    kind: 'throughput',
    title: 'Small responses, 200 connections',
    what: 'GET / over 200 keep-alive connections (wrk -t1 -c200).',
    path: '/',
    threads: 1,
    connections: 200,
  },
  browser: {
    ...single,
    name: 'browser',
    kind: 'throughput',
    title: 'Small responses, browser-like requests',
    what: 'GET / over 50 keep-alive connections (wrk -t1 -c50) with the 11 request header fields a browser sends (~600-byte heads: User-Agent, Accept*, Cookie, Referer, Sec-Fetch-*...), which every proxy must parse and pass on.',
    path: '/',
    threads: 1,
    connections: 50,
    headers: BROWSER_HEADERS,
  },
  https: {
    ...single,
    name: 'https',
    kind: 'throughput',
    title: 'HTTPS, small responses, 50 connections',
    what:
      "As c50, over TLS: the seed's port 443 (wrk -t1 -c50 https://, TLS 1.3, a self-signed RSA-2048 certificate, " +
      '`ssl_protocols TLSv1.2 TLSv1.3`, `ssl_session_cache shared:SSL:10m`). Connections are kept alive, so the ' +
      'handshakes are a one-off and each request pays for its TLS records.',
    path: '/',
    threads: 1,
    connections: 50,
    tls: true,
  },
  seed: {
    ...single,
    name: 'seed',
    kind: 'throughput',
    title: "The seed's configuration, HTTPS, 50 connections",
    what:
      "GET /api/hello over TLS (wrk -t1 -c50 https://) through the seed's port-443 server as it is written " +
      '(bench/configs/seed.conf: its ssl_* lines, `location /api` with its timeouts and four `proxy_set_header`, ' +
      '`max_fails=3 fail_timeout=30s`, no upstream `keepalive`). nginx therefore opens a backend connection per ' +
      'request; fulcrum keeps idle upstream connections by default. fulcrum and nginx only.',
    path: '/api/hello',
    threads: 1,
    connections: 50,
    tls: true,
    seed: true,
  },
  c1: {
    ...single,
    name: 'c1',
    kind: 'throughput',
    title: 'Latency, 1 connection',
    what: 'GET / over one keep-alive connection, one request at a time (wrk -t1 -c1): pure per-request latency.',
    path: '/',
    threads: 1,
    connections: 1,
  },
  newconn: {
    ...single,
    name: 'newconn',
    kind: 'throughput',
    title: 'New connection per request',
    what: 'GET / with "Connection: close" over 50 connections (wrk -t1 -c50): every request pays a TCP accept and close.',
    path: '/',
    threads: 1,
    connections: 50,
    headers: ['Connection: close'],
  },
  'newconn-tls': {
    ...single,
    name: 'newconn-tls',
    kind: 'throughput',
    title: 'New TLS connection per request',
    what:
      'As newconn, over TLS (the https scenario\'s port): every request pays a TCP accept, a TLS handshake and a close. ' +
      "wrk offers each new connection the session of its last one, as a returning browser does, so most handshakes are " +
      'TLS 1.3 resumptions (still with a fresh key exchange).',
    path: '/',
    threads: 1,
    connections: 50,
    headers: ['Connection: close'],
    tls: true,
  },
  '1mb': {
    ...single,
    name: '1mb',
    kind: 'throughput',
    title: '1 MiB responses',
    what: 'GET /1mb (a 1 MiB file) over 10 keep-alive connections (wrk -t1 -c10), proxy buffering off.',
    path: '/1mb',
    threads: 1,
    connections: 10,
    showTransfer: true,
  },
  upload100mb: {
    ...single,
    name: 'upload100mb',
    kind: 'upload',
    title: '100 MB uploads',
    what: '5 sequential POSTs of 100 MB each to /upload (request buffering off); the backend reads every byte before answering.',
    bytes: 100e6,
    count: 5,
  },
  upload1gb: {
    ...single,
    name: 'upload1gb',
    kind: 'upload',
    title: '1 GB upload',
    what: 'One POST of 1 GB to /upload: the proxy must stream it, its RSS must not grow with the body.',
    bytes: 1e9,
    count: 1,
  },
  idle10k: {
    ...single,
    name: 'idle10k',
    kind: 'idle',
    title: '10,000 idle keep-alive connections',
    what: '10,000 client connections each send one GET / and then stay open and idle: memory per connection.',
    connections: 10_000,
  },
  workers2: {
    name: 'workers2',
    kind: 'throughput',
    title: '2 workers, unpinned',
    what:
      'As c200, but each proxy runs 2 workers (HAProxy: 2 threads) and is NOT pinned: it may use both cores, ' +
      'including the load core that wrk and the backends stay pinned to.',
    workers: 2,
    pinned: false,
    scalingBaseline: 'c200',
    path: '/',
    threads: 1,
    connections: 200,
  },
  capped1: {
    ...capped,
    name: 'capped1',
    title: `1 worker capped at ${CAP_PERCENT}% of a core`,
    what:
      `As c200 (with 2 wrk threads), but the proxy's worker is held to ${CAP_PERCENT}% of one core by a cgroup CPU quota ` +
      '(unpinned), so that wrk and the backends always have CPU to spare: the baseline for capped2.',
    workers: 1,
  },
  capped2: {
    ...capped,
    name: 'capped2',
    title: `2 workers, each capped at ${CAP_PERCENT}% of a core`,
    what:
      `As capped1, with 2 workers (HAProxy: 2 threads), each held to ${CAP_PERCENT}% of one core by its own cgroup ` +
      `(HAProxy's threads share one cgroup of ${2 * CAP_PERCENT}%; master processes are not capped, their CPU is counted). ` +
      'Throughput can only double if the proxy spreads the load evenly and its workers share nothing that serializes them.',
    workers: 2,
    scalingBaseline: 'capped1',
  },
};

export interface ThroughputRun {
  kind: 'throughput';
  reqPerSec: number;
  p50Us: number;
  p99Us: number;
  /** Proxy CPU time (whole process tree) per request, in microseconds. */
  cpuUsPerReq: number;
  rssMiB: number;
  pssMiB: number;
  transferMBps: number;
  /**
   * Upstream connections opened per request (accepted by the backends during
   * the run). Near 0 when the proxy reuses its backend connections.
   */
  upstreamConnectsPerReq: number;
  /** Busy percent per core during the measured run. */
  coreBusy: number[];
  stealPct: number;
  /** CPU used by processes outside the benchmark, in % of one core. */
  otherCpuPct: number;
  /** What kept the load core busy, in % of one core: wrk, and the backends. */
  wrkCpuPct: number;
  backendCpuPct: number;
  /** With several workers: client connections per process halfway through the run, largest first. */
  connectionsPerProcess: number[] | undefined;
  errors: string;
}

export interface UploadRun {
  kind: 'upload';
  mbPerSec: number;
  rssBeforeMiB: number;
  peakGrowthMiB: number;
  rssAfterMiB: number;
  /** Proxy CPU seconds per GB forwarded. */
  cpuSecPerGB: number;
  /** Uploads the backends logged as complete, of those sent. */
  verified: number;
  sent: number;
  /** Busy percent per core during the uploads: who limited the MB/s. */
  coreBusy: number[];
  otherCpuPct: number;
  errors: string;
}

export interface IdleRun {
  kind: 'idle';
  held: number;
  rssBeforeMiB: number;
  rssIdleMiB: number;
  growthMiB: number;
  kibPerConn: number;
  errors: string;
}

export type RunMeasurement = ThroughputRun | UploadRun | IdleRun;

export interface Session {
  tmp: string;
  backends: Backends;
  clockTicks: number;
  durationSec: number;
  warmupSec: number;
  /** The certificate TLS scenarios use (made only when one runs). */
  tls: TlsFiles | undefined;
}

const kibToMiB = (kib: number) => kib / 1024;

/**
 * CPU used by everything outside the benchmark during a measurement, in % of
 * one core: busy time on all cores (/proc/stat, which includes the irq and
 * softirq time that per-process counters also carry) minus what the
 * benchmark's own processes used. A build or a test run on the same machine
 * disturbs the numbers, and this says so instead of leaving unexplained
 * noise. /proc/stat is tick-sampled, so a few percent either way is jitter.
 */
class OtherCpuMeter {
  private readonly startedAt = performance.now();
  private readonly coresBefore = readCoreTimes();
  private readonly ownBefore = benchmarkCpuTicks(ownProcessGroups());

  constructor(private readonly clockTicks: number) {}

  stop(): number {
    const own = benchmarkCpuTicks(ownProcessGroups()) - this.ownBefore;
    const coresAfter = readCoreTimes();
    const busy = coresAfter.reduce((sum, c, i) => sum + c.busy - (this.coresBefore[i]?.busy ?? c.busy), 0);
    const seconds = (performance.now() - this.startedAt) / 1000;
    return seconds > 0 ? Math.max(0, (100 * (busy - own)) / this.clockTicks / seconds) : NaN;
  }
}

export function usesTls(scenario: Scenario): boolean {
  return scenario.kind === 'throughput' && scenario.tls === true;
}

function usesSeedConfig(scenario: Scenario): boolean {
  return scenario.kind === 'throughput' && scenario.seed === true;
}

/** Whether a proxy takes part in a scenario (the seed's configuration is nginx's, not HAProxy's). */
export function runsIn(scenario: Scenario, proxy: ProxyName): boolean {
  return !(usesSeedConfig(scenario) && proxy === 'haproxy');
}

/** Starts the proxy, measures one run of the scenario, always stops the proxy. */
export async function measureRun(session: Session, scenario: Scenario, def: ProxyDef): Promise<RunMeasurement> {
  const tls = usesTls(scenario) ? session.tls : undefined;
  if (usesTls(scenario) && tls === undefined) throw new Error(`${scenario.name}: no certificate was made for this session`);
  const seed = usesSeedConfig(scenario);
  const proxy = await startProxy(def, session.tmp, session.backends.ports, scenario.workers, scenario.pinned, tls, seed);
  let caps: CpuCaps | undefined;
  try {
    if (scenario.cpuCapCores !== undefined) caps = await capWorkers(proxy, def, scenario.workers, scenario.cpuCapCores);
    return await measureOn(session, scenario, proxy);
  } finally {
    await proxy.proc.stop();
    await caps?.remove();
  }
}

function measureOn(session: Session, scenario: Scenario, proxy: RunningProxy): Promise<RunMeasurement> {
  switch (scenario.kind) {
    case 'throughput':
      return measureThroughput(session, scenario, proxy);
    case 'upload':
      return measureUpload(session, scenario, proxy);
    case 'idle':
      return measureIdle(session, scenario, proxy);
  }
}

/**
 * Puts each worker of a running proxy into its own capped cgroup: the
 * children of the root process (nginx's and fulcrum's workers), the root
 * itself when it has none (fulcrum with one worker serves in its only
 * process), or, for a threaded proxy, the whole process with the cap times
 * its threads. A machine that cannot do it fails the proxy's runs with why.
 */
async function capWorkers(proxy: RunningProxy, def: ProxyDef, workers: number, cores: number): Promise<CpuCaps> {
  const caps = CpuCaps.open();
  if (typeof caps === 'string') throw new StartError(`cannot cap CPU: ${caps}`);
  try {
    if (def.workersAreThreads) {
      caps.cap(proxy.pid, cores * workers);
      return caps;
    }
    const deadline = Date.now() + 5000;
    let children = childPids(proxy.pid);
    while (children.length > 0 && children.length < workers && Date.now() < deadline) {
      await sleep(100);
      children = childPids(proxy.pid);
    }
    const targets = children.length === 0 && workers === 1 ? [proxy.pid] : children;
    if (targets.length !== workers) throw new StartError(`expected ${workers} worker processes, found ${targets.length}`);
    for (const pid of targets) caps.cap(pid, cores);
    return caps;
  } catch (err) {
    await caps.remove();
    if (err instanceof StartError) throw err;
    throw new StartError(`cannot cap CPU: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function diedError(proxy: RunningProxy): string {
  return proxy.proc.hasExited ? `proxy exited during the run (${proxy.proc.exitDescription})` : '';
}

function joinErrors(...parts: string[]): string {
  return parts.filter(Boolean).join('; ');
}

async function measureThroughput(s: Session, sc: ThroughputScenario, proxy: RunningProxy): Promise<ThroughputRun> {
  const load: WrkLoad = {
    port: proxy.port,
    path: sc.path,
    threads: sc.threads,
    connections: sc.connections,
    durationSec: s.durationSec,
    headers: sc.headers ?? [],
    tls: sc.tls === true,
  };
  // Unmeasured warm-up: JIT, upstream keep-alive pools, lazily grown buffers.
  if (s.warmupSec > 0) await runWrk({ ...load, durationSec: s.warmupSec }, LOAD_CPUS, false);

  const acceptsBefore = await backendAccepts(s.backends);
  const others = new OtherCpuMeter(s.clockTicks);
  const before = sampleTree(proxy.pid);
  const backendsBefore = sampleTree(s.backends.proc.pid);
  const wrkBefore = reapedChildTicks();
  const coresBefore = readCoreTimes();
  const startedAt = performance.now();
  let connectionsPerProcess: number[] | undefined;
  const spreadTimer =
    sc.workers > 1 ? setTimeout(() => (connectionsPerProcess = clientConnectionsPerProcess(proxy.pid, proxy.port)), (s.durationSec * 1000) / 2) : undefined;
  const wrk = await runWrk(load, LOAD_CPUS);
  clearTimeout(spreadTimer);
  const seconds = (performance.now() - startedAt) / 1000;
  const coresAfter = readCoreTimes();
  const wrkTicks = reapedChildTicks() - wrkBefore;
  const backendsAfter = sampleTree(s.backends.proc.pid);
  const after = sampleTree(proxy.pid);
  const otherCpuPct = others.stop();
  const acceptsAfter = await backendAccepts(s.backends);
  const upstreamConnects = acceptsAfter - acceptsBefore;
  const pctOfCore = (ticks: number) => (100 * ticks) / s.clockTicks / seconds;

  const cpuSec = Math.max(0, after.cpuTicks - before.cpuTicks) / s.clockTicks;
  return {
    kind: 'throughput',
    reqPerSec: wrk.reqPerSec,
    p50Us: wrk.latencyUs.p50,
    p99Us: wrk.latencyUs.p99,
    cpuUsPerReq: wrk.requests > 0 ? (cpuSec * 1e6) / wrk.requests : NaN,
    rssMiB: kibToMiB(after.rssKb),
    pssMiB: kibToMiB(treePssKb(proxy.pid)),
    transferMBps: wrk.transferBytesPerSec / 1e6,
    upstreamConnectsPerReq: wrk.requests > 0 ? upstreamConnects / wrk.requests : NaN,
    coreBusy: coreBusyPercent(coresBefore, coresAfter),
    stealPct: stealPercent(coresBefore, coresAfter),
    otherCpuPct,
    wrkCpuPct: pctOfCore(wrkTicks),
    backendCpuPct: pctOfCore(backendsAfter.cpuTicks - backendsBefore.cpuTicks),
    connectionsPerProcess,
    errors: joinErrors(wrkErrorSummary(wrk), wrk.requests === 0 ? 'no requests completed' : '', diedError(proxy)),
  };
}

async function runUploadClient(port: number, bytes: number, count: number): Promise<UploadReport> {
  // Generous bound: 20 MB/s is far below anything healthy on loopback.
  const timeoutMs = 30_000 + (bytes * count) / 20e3;
  const argv = [
    process.execPath,
    join(CLIENTS_DIR, 'upload.js'),
    '--port',
    String(port),
    '--path',
    '/upload',
    '--bytes',
    String(bytes),
    '--count',
    String(count),
  ];
  const r = await runBounded('upload client', argv, timeoutMs, { cpus: LOAD_CPUS });
  if (r.timedOut) return { uploads: [], error: `upload client timed out after ${Math.round(timeoutMs / 1000)} s` };
  try {
    return JSON.parse(r.stdout) as UploadReport;
  } catch {
    return { uploads: [], error: `upload client failed (exit code ${r.code}): ${r.stderr}` };
  }
}

async function measureUpload(s: Session, sc: UploadScenario, proxy: RunningProxy): Promise<UploadRun> {
  // Warm-up: a few small uploads, so the first big one does not pay for JIT.
  await runUploadClient(proxy.port, ONE_MB_BYTES, 3);
  await sleep(500);

  const others = new OtherCpuMeter(s.clockTicks);
  const coresBefore = readCoreTimes();
  const before = sampleTree(proxy.pid);
  const logOffset = uploadLogOffset(s.backends);
  const sampler = new RssSampler(proxy.pid, 100);
  sampler.start();
  const report = await runUploadClient(proxy.port, sc.bytes, sc.count);
  const { peakKb } = sampler.stop();
  const after = sampleTree(proxy.pid);
  const coresAfter = readCoreTimes();
  const otherCpuPct = others.stop();

  // The backends log each upload they read completely; anything short is an error.
  const logged = await waitForUploadLog(s.backends, logOffset, sc.count);
  const verified = logged.filter((e) => e.status === 200 && e.requestLength >= sc.bytes).length;
  const uploads = report.uploads;
  const totalBytes = uploads.reduce((sum, u) => sum + u.bytes, 0);
  const totalMs = uploads.reduce((sum, u) => sum + u.ms, 0);
  const badStatus = uploads.filter((u) => u.status !== 200).length;
  const early = uploads.filter((u) => u.earlyResponse).length;
  const cpuSec = Math.max(0, after.cpuTicks - before.cpuTicks) / s.clockTicks;
  return {
    kind: 'upload',
    mbPerSec: totalMs > 0 ? totalBytes / 1e6 / (totalMs / 1000) : NaN,
    rssBeforeMiB: kibToMiB(before.rssKb),
    peakGrowthMiB: kibToMiB(Math.max(peakKb, after.rssKb) - before.rssKb),
    rssAfterMiB: kibToMiB(after.rssKb),
    cpuSecPerGB: totalBytes > 0 ? cpuSec / (totalBytes / 1e9) : NaN,
    verified,
    sent: sc.count,
    coreBusy: coreBusyPercent(coresBefore, coresAfter),
    otherCpuPct,
    errors: joinErrors(
      report.error ?? '',
      uploads.length < sc.count ? `${sc.count - uploads.length} uploads not completed` : '',
      badStatus > 0 ? `${badStatus} non-200` : '',
      early > 0 ? `${early} answered before the body was sent` : '',
      verified < sc.count ? `backends saw ${verified}/${sc.count} complete bodies` : '',
      diedError(proxy),
    ),
  };
}

/** Waits for a JSON line with the given phase on a client's stdout. */
async function waitForLine<T>(client: ManagedProcess, phase: string, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const line = client.stdout.split('\n').find((l) => l.includes(`"phase":"${phase}"`));
    if (line) return JSON.parse(line) as T;
    if (client.hasExited) throw new Error(`idle client exited (${client.exitDescription}): ${client.stderrTail()}`);
    await sleep(50);
  }
  throw new Error(`idle client: no "${phase}" report within ${timeoutMs} ms`);
}

async function measureIdle(s: Session, sc: IdleScenario, proxy: RunningProxy): Promise<IdleRun> {
  // Warm up with ordinary traffic first, so that the baseline already holds
  // everything a used proxy holds (JIT code, pools) and the growth is only
  // what the idle connections cost.
  if (s.warmupSec > 0) {
    await runWrk(
      { port: proxy.port, path: '/', threads: 1, connections: 50, durationSec: s.warmupSec },
      LOAD_CPUS,
      false,
    );
  }
  await sleep(1000);
  const before = sampleTree(proxy.pid);

  const client = new ManagedProcess(
    'idle client',
    [process.execPath, join(CLIENTS_DIR, 'idle.js'), '--port', String(proxy.port), '--connections', String(sc.connections)],
    { cpus: LOAD_CPUS, stdin: true, keepStdout: true },
  );
  try {
    const ready = await waitForLine<IdleReady>(client, 'ready', 120_000);
    // Let the proxy settle (freed request buffers, a GC) before reading its memory.
    await sleep(2000);
    const idle = sampleTree(proxy.pid);
    client.send('report\n');
    const final = await waitForLine<IdleFinal>(client, 'final', 10_000);
    const errorKinds = Object.entries(ready.errors)
      .map(([kind, n]) => `${n} ${kind}`)
      .join(', ');
    const growthKb = idle.rssKb - before.rssKb;
    return {
      kind: 'idle',
      held: final.stillOpen,
      rssBeforeMiB: kibToMiB(before.rssKb),
      rssIdleMiB: kibToMiB(idle.rssKb),
      growthMiB: kibToMiB(growthKb),
      kibPerConn: final.stillOpen > 0 ? growthKb / final.stillOpen : NaN,
      errors: joinErrors(
        ready.failed > 0 ? `${ready.failed} of ${sc.connections} failed (${errorKinds})` : '',
        final.closedByPeer > 0 ? `${final.closedByPeer} closed by the proxy while idle` : '',
        diedError(proxy),
      ),
    };
  } finally {
    await client.stop(3000);
  }
}
