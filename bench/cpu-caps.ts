/**
 * CPU caps for the scaling scenarios: each worker of a proxy gets its own
 * cgroup with a CFS quota of a fraction of one core.
 *
 * Why: on a 2-core machine, wrk and the backends need a core of their own,
 * so two uncapped workers never have two cores to scale onto (nginx cannot
 * show it here either). Capping every worker well below a core leaves the
 * load generator room, so the only thing that can change between 1 and 2
 * workers is the proxy's own ability to spread work over its workers: the
 * accept balance, anything the workers share or serialize on, the
 * supervisor. That is the property "scales to N cores" rests on.
 *
 * cgroup v1 (the `cpu` hierarchy) and cgroup v2 (the unified hierarchy with
 * the cpu controller) are both handled. Needs root; without it the scenario
 * says why it cannot run.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The CFS period: short, so a capped worker is throttled in small slices rather than 70 ms stalls. */
const PERIOD_US = 20_000;

interface Hierarchy {
  version: 1 | 2;
  root: string;
}

function findHierarchy(): Hierarchy | string {
  const v1 = '/sys/fs/cgroup/cpu';
  if (existsSync(join(v1, 'cpu.cfs_quota_us'))) return { version: 1, root: v1 };
  const v2 = '/sys/fs/cgroup';
  try {
    if (readFileSync(join(v2, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('cpu')) return { version: 2, root: v2 };
  } catch {
    // no unified hierarchy
  }
  return 'no cgroup cpu controller (neither /sys/fs/cgroup/cpu nor cgroup v2 with "cpu")';
}

/** One cgroup per capped worker; remove() after the processes are gone. */
export class CpuCaps {
  private readonly dirs: string[] = [];

  private constructor(private readonly hierarchy: Hierarchy) {}

  /** A CpuCaps, or why this machine cannot cap CPU. */
  static open(): CpuCaps | string {
    const h = findHierarchy();
    if (typeof h === 'string') return h;
    if (h.version === 2) {
      try {
        // Children get the cpu controller only if the parent delegates it.
        writeFileSync(join(h.root, 'cgroup.subtree_control'), '+cpu');
      } catch (err) {
        return `cannot enable the cgroup v2 cpu controller: ${(err as Error).message}`;
      }
    }
    return new CpuCaps(h);
  }

  /** Moves a process (all its threads) into a new cgroup limited to `cores` of CPU time. */
  cap(pid: number, cores: number): void {
    const dir = join(this.hierarchy.root, `fulcrum-bench-${process.pid}-${pid}`);
    mkdirSync(dir, { recursive: true });
    this.dirs.push(dir);
    const quota = Math.round(cores * PERIOD_US);
    if (this.hierarchy.version === 1) {
      writeFileSync(join(dir, 'cpu.cfs_period_us'), String(PERIOD_US));
      writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(quota));
    } else {
      writeFileSync(join(dir, 'cpu.max'), `${quota} ${PERIOD_US}`);
    }
    writeFileSync(join(dir, 'cgroup.procs'), String(pid));
  }

  /**
   * Removes the cgroups. A cgroup can only go once empty, and a process
   * leaves it only when it has been reaped, so this retries for a while.
   */
  async remove(): Promise<void> {
    for (const dir of this.dirs.splice(0)) {
      for (let attempt = 0; ; attempt++) {
        try {
          rmdirSync(dir);
          break;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') break;
          if (attempt >= 50) {
            process.stderr.write(`warning: could not remove ${dir}: ${(err as Error).message}\n`);
            break;
          }
          await sleep(100);
        }
      }
    }
  }
}
