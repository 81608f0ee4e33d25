/**
 * The machine side of the benchmark: which core does what, tool discovery,
 * version strings, and the harness's own limits and affinity.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { openFileLimit } from './procfs.js';
import { REPO_ROOT } from './paths.js';

/** wrk, the backends and the helper clients share this core... */
export const LOAD_CORE = 0;
/** ...so that this one runs nothing but the proxy under test. */
export const PROXY_CORE = 1;
/** The same, as `taskset -c` lists. */
export const LOAD_CPUS = String(LOAD_CORE);
export const PROXY_CPUS = String(PROXY_CORE);

/**
 * All CPUs of the machine, whatever this process's affinity (nproc and
 * availableParallelism() only count the cores a process may run on, and the
 * harness pins itself to the load core).
 */
export function cpuCount(): number {
  return cpus().length;
}

/**
 * "Unpinned" still goes through taskset with every core: the harness pins
 * itself to the load core, and children inherit their parent's affinity.
 */
export function allCpus(): string {
  return `0-${cpuCount() - 1}`;
}

export function commandExists(name: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/**
 * Runs a short command and returns stdout+stderr ('' if it cannot run):
 * `nginx -v` prints to stderr, `wrk -v` exits 1, both still carry the version.
 */
function capture(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

function firstMatch(text: string, re: RegExp): string {
  return text.match(re)?.[1] ?? 'unknown';
}

export interface MachineInfo {
  date: string;
  nproc: number;
  cpuModel: string;
  kernel: string;
  /** How an idle CPU waits for work: cpuidle driver, and the guest halt-polling window when that driver is haltpoll. */
  idle: string;
  node: string;
  nginx: string;
  haproxy: string;
  wrk: string;
  fulcrum: string;
}

export function machineInfo(): MachineInfo {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version?: string };
  // Read-only git query; the repo may have no commit yet.
  const rev = spawnSync('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout?.trim() ?? '';
  const commit = /^[0-9a-f]{4,}$/.test(rev) ? `commit ${rev}` : 'no commit';
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    nproc: cpuCount(),
    cpuModel: firstMatch(cpuinfo, /^model name\s*:\s*(.+)$/m),
    kernel: release(),
    idle: idleInfo(),
    node: process.version,
    nginx: firstMatch(capture('nginx', ['-v']), /nginx\/(\S+)/),
    haproxy: firstMatch(capture('haproxy', ['-v']), /version (\S+)/),
    wrk: firstMatch(capture('wrk', ['-v']), /^wrk (\S+)/m),
    fulcrum: `${pkg.version ?? '?'} (${commit})`,
  };
}

/**
 * On a virtual machine an idle vCPU halts, and waking it again (a request
 * arriving for wrk or a backend) is a trip through the hypervisor. The guest
 * haltpoll driver polls for a while before halting; with its window at 0 every
 * wakeup of the load core pays that trip, which shows in p99 of a proxy that
 * leaves the load core partly idle (docs/benchmarks.md, "p99").
 */
function idleInfo(): string {
  const read = (path: string): string => {
    try {
      return readFileSync(path, 'utf8').trim();
    } catch {
      return '';
    }
  };
  const driver = read('/sys/devices/system/cpu/cpuidle/current_driver') || 'unknown';
  const pollNs = read('/sys/module/haltpoll/parameters/guest_halt_poll_ns');
  return driver === 'haltpoll' && pollNs !== '' ? `haltpoll, guest_halt_poll_ns=${pollNs}` : driver;
}

/**
 * Raises the harness's open-file limit; every child inherits it. 10,000 idle
 * connections need that many descriptors in the client and in the proxy
 * (nginx's worker_connections 20000 counts both sides). Raising the hard
 * limit needs root or CAP_SYS_RESOURCE; otherwise the soft limit is raised to
 * the hard one.
 */
export function raiseOpenFileLimit(wanted: number): { soft: number; hard: number } {
  const current = openFileLimit();
  if (current.soft >= wanted) return current;
  const attempt = (limit: string) => {
    try {
      execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${limit}`], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  if (!attempt(`${wanted}:${Math.max(wanted, current.hard)}`) && Number.isFinite(current.hard)) {
    attempt(`${current.hard}:${current.hard}`);
  }
  return openFileLimit();
}

/**
 * Pins the harness itself (all its threads) to the load core, so that its
 * own sampling and bookkeeping never run on the proxy's core.
 */
export function pinSelf(cpus: string): boolean {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
