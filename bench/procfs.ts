/**
 * Resource accounting from /proc (Linux only).
 *
 * A proxy under test may be several processes (nginx master + workers, or
 * fulcrum with `worker_processes 2`), so CPU and memory are always measured
 * over the whole process tree: the root pid and every descendant.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

/** Kernel clock ticks per second, the unit of utime/stime in /proc/<pid>/stat. */
export function clockTicksPerSecond(): number {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    if (Number.isFinite(n) && n > 0) return n;
  } catch {
    // fall through to the value every mainstream Linux build uses
  }
  return 100;
}

interface ProcStat {
  pid: number;
  /** R, S, D, Z, ... */
  state: string;
  ppid: number;
  pgid: number;
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
  /** cutime + cstime: CPU of children that exited and were waited for. */
  childTicks: number;
}

function readFileOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined; // the process exited between listing and reading
  }
}

function readStat(pid: number): ProcStat | undefined {
  const text = readFileOrUndefined(`/proc/${pid}/stat`);
  if (text === undefined) return undefined;
  // The command name (field 2) is in parentheses and may contain spaces or
  // parentheses itself, so split only what follows the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): ppid is field 4, pgrp 5, utime 14, stime 15,
  // cutime 16, cstime 17.
  const field = (n: number) => Number(rest[n - 3]);
  return {
    pid,
    state: rest[0] ?? '?',
    ppid: field(4),
    pgid: field(5),
    cpuTicks: field(14) + field(15),
    childTicks: field(16) + field(17),
  };
}

function allStats(): ProcStat[] {
  const stats: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) stats.push(s);
  }
  return stats;
}

/** The direct children of a process (a proxy's worker processes). */
export function childPids(pid: number): number[] {
  return allStats()
    .filter((s) => s.ppid === pid)
    .map((s) => s.pid);
}

/**
 * The root and all its descendants. Scanning /proc for parent links works on
 * every kernel (/proc/<pid>/task/<tid>/children needs CONFIG_PROC_CHILDREN).
 */
function treeStats(rootPid: number): ProcStat[] {
  const stats = allStats();
  const byParent = new Map<number, ProcStat[]>();
  for (const s of stats) {
    const list = byParent.get(s.ppid) ?? [];
    list.push(s);
    byParent.set(s.ppid, list);
  }
  const root = stats.find((s) => s.pid === rootPid);
  if (!root) return [];
  const out: ProcStat[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const s = queue.shift()!;
    out.push(s);
    queue.push(...(byParent.get(s.pid) ?? []));
  }
  return out;
}

/**
 * CPU ticks of this process's children that have exited and been reaped:
 * over a window in which only wrk ran and exited, that is wrk's CPU time.
 */
export function reapedChildTicks(): number {
  return readStat(process.pid)?.childTicks ?? 0;
}

/**
 * Live (non-zombie) members of a process group. Zombies are ignored: an
 * orphaned worker killed with its group waits for init to reap it, and it
 * uses no resources in the meantime.
 */
export function liveGroupMembers(pgid: number): number[] {
  return allStats()
    .filter((s) => s.pgid === pgid && s.state !== 'Z')
    .map((s) => s.pid);
}

/**
 * Established TCP connections whose local port is `port` (the proxy's
 * listening port: its client connections), counted per process of the tree
 * that holds any, largest first. With several workers it shows how the
 * connections were spread over them.
 */
export function clientConnectionsPerProcess(rootPid: number, port: number): number[] {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = (readFileOrUndefined(table) ?? '').split('\n').slice(1);
    for (const line of lines) {
      const f = line.trim().split(/\s+/);
      // f[1] local address:port (hex), f[3] state (01 = ESTABLISHED), f[9] inode
      if (f.length < 10 || f[3] !== '01') continue;
      if (parseInt(f[1]!.slice(f[1]!.lastIndexOf(':') + 1), 16) === port) inodes.add(f[9]!);
    }
  }
  const counts: number[] = [];
  for (const pid of processTree(rootPid)) {
    let n = 0;
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target = '';
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (target.startsWith('socket:[') && inodes.has(target.slice(8, -1))) n++;
    }
    if (n > 0) counts.push(n);
  }
  return counts.sort((a, b) => b - a);
}

/** Pids of the tree rooted at rootPid (empty once it has exited). */
export function processTree(rootPid: number): number[] {
  return treeStats(rootPid).map((s) => s.pid);
}

function statusFieldKb(pid: number, field: string): number {
  const text = readFileOrUndefined(`/proc/${pid}/status`);
  const m = text?.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  return m ? Number(m[1]) : 0;
}

export interface TreeSample {
  pids: number[];
  /** Sum of utime + stime over the tree, in clock ticks. */
  cpuTicks: number;
  /** Sum of VmRSS over the tree, in KiB (shared pages counted once per process). */
  rssKb: number;
}

/** CPU and resident memory of a whole process tree, right now. */
export function sampleTree(rootPid: number): TreeSample {
  const stats = treeStats(rootPid);
  let rssKb = 0;
  for (const s of stats) rssKb += statusFieldKb(s.pid, 'VmRSS');
  return {
    pids: stats.map((s) => s.pid),
    cpuTicks: stats.reduce((sum, s) => sum + s.cpuTicks, 0),
    rssKb,
  };
}

/**
 * Proportional set size of the tree, in KiB: shared pages (the node or nginx
 * binary, copy-on-write memory inherited from a master) are split between the
 * processes sharing them, so unlike summed RSS this does not grow just because
 * a proxy uses more processes. Reading smaps_rollup walks page tables, so this
 * is only taken once per run, not in the 100 ms sampler.
 */
export function treePssKb(rootPid: number): number {
  let total = 0;
  for (const pid of processTree(rootPid)) {
    const text = readFileOrUndefined(`/proc/${pid}/smaps_rollup`);
    const m = text?.match(/^Pss:\s+(\d+) kB/m);
    if (m) total += Number(m[1]);
  }
  return total;
}

/** Cumulative busy and total jiffies of one CPU core, from /proc/stat. */
export interface CoreTimes {
  busy: number;
  total: number;
  steal: number;
}

export function readCoreTimes(): CoreTimes[] {
  const cores: CoreTimes[] = [];
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = line.match(/^cpu(\d+)\s+(.*)$/);
    if (!m) continue;
    // user nice system idle iowait irq softirq steal guest guest_nice
    const v = m[2]!.trim().split(/\s+/).map(Number);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const steal = v[7] ?? 0;
    // guest time is already included in user time, so only the first 8 count.
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    cores[Number(m[1])] = { busy: total - idle - steal, total, steal };
  }
  return cores;
}

/** Percent of wall time each core was busy between two readings. */
export function coreBusyPercent(before: CoreTimes[], after: CoreTimes[]): number[] {
  return after.map((a, i) => {
    const b = before[i];
    if (!b) return 0;
    const total = a.total - b.total;
    return total > 0 ? (100 * (a.busy - b.busy)) / total : 0;
  });
}

/** Percent of wall time stolen by the hypervisor, over all cores. */
export function stealPercent(before: CoreTimes[], after: CoreTimes[]): number {
  let steal = 0;
  let total = 0;
  after.forEach((a, i) => {
    const b = before[i];
    if (!b) return;
    steal += a.steal - b.steal;
    total += a.total - b.total;
  });
  return total > 0 ? (100 * steal) / total : 0;
}

/**
 * Samples a tree's RSS every intervalMs and remembers the peak, to catch the
 * transient growth of an upload that a before/after reading would miss.
 */
export class RssSampler {
  private timer: NodeJS.Timeout | undefined;
  private peak = 0;
  private samples = 0;

  constructor(
    private readonly rootPid: number,
    private readonly intervalMs = 100,
  ) {}

  start(): void {
    this.take();
    this.timer = setInterval(() => this.take(), this.intervalMs);
  }

  /** Stops sampling; returns the peak RSS seen, in KiB. */
  stop(): { peakKb: number; samples: number } {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.take();
    return { peakKb: this.peak, samples: this.samples };
  }

  private take(): void {
    const { rssKb } = sampleTree(this.rootPid);
    this.samples++;
    if (rssKb > this.peak) this.peak = rssKb;
  }
}

/** The open-file limit of a process, from /proc/<pid>/limits. */
export function openFileLimit(pid: number | 'self' = 'self'): { soft: number; hard: number } {
  const text = readFileOrUndefined(`/proc/${pid}/limits`) ?? '';
  const m = text.match(/^Max open files\s+(\S+)\s+(\S+)/m);
  const num = (s: string | undefined) => (s === undefined || s === 'unlimited' ? Infinity : Number(s));
  return { soft: num(m?.[1]), hard: num(m?.[2]) };
}


/**
 * CPU ticks consumed by the benchmark: everything in its process groups,
 * this harness and the children it has reaped (wrk and the clients, once
 * they have exited, only show up there), and kernel threads, which mostly do
 * network work (ksoftirqd) for the benchmark's own traffic.
 */
export function benchmarkCpuTicks(ownGroups: ReadonlySet<number>): number {
  let ticks = 0;
  for (const s of allStats()) {
    // A zombie's ticks disappear when it is reaped (by init, for orphaned
    // workers of a stopped proxy), which would look like negative CPU use.
    if (s.state === 'Z') continue;
    if (s.pid === process.pid) ticks += s.cpuTicks + s.childTicks;
    else if (ownGroups.has(s.pgid) || s.pid === 2 || s.ppid === 2) ticks += s.cpuTicks;
  }
  return ticks;
}
