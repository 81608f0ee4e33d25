/**
 * Active health checks with worker_processes > 1: the supervisor probes each
 * server once (not once per worker) and sends every verdict change to the
 * workers ('health' message), which apply it to their own server states
 * (src/health/active.ts applyVerdict). A worker that starts or reloads gets
 * all current verdicts.
 *
 * The supervisor has no traffic and no runtime table of its own, so this
 * keeps one: the configuration compiled (dry run) against a registry that
 * lives as long as the supervisor, with the cluster's membership (discovered
 * servers, admin API changes) applied, so probers and their counters survive
 * reloads exactly as in a single process. Membership changes are noticed
 * within MEMBERSHIP_POLL_MS.
 */
import type { LoadedConfig } from '../config/load.js';
import { ActiveHealth, logActiveHealthEvents, type HealthVerdict } from '../health/active.js';
import { LogSinks } from '../log/access-log.js';
import { log } from '../log/error-log.js';
import { compile } from '../runtime/compile.js';
import type { Membership } from '../runtime/membership.js';
import { ServerRegistry } from '../upstream/group.js';

const MEMBERSHIP_POLL_MS = 1000;

export class ClusterHealth {
  private readonly registry = new ServerRegistry();
  private readonly health: ActiveHealth;
  private readonly unlog: () => void;
  private generation = 0;
  private loaded: LoadedConfig | undefined;
  private membership: Membership | undefined;
  private membershipText = '';
  private poll: NodeJS.Timeout | undefined;

  constructor(private readonly send: (verdicts: HealthVerdict[]) => void) {
    this.health = new ActiveHealth((_server, verdict) => this.send([verdict]));
    this.unlog = logActiveHealthEvents();
  }

  /** Applies a configuration that went live in the workers (start or reload), then sends every verdict. */
  configure(loaded: LoadedConfig, membership: Membership | undefined): void {
    this.loaded = loaded;
    this.membership = membership;
    this.apply();
    this.send(this.verdicts());
    if (this.poll === undefined) {
      this.poll = setInterval(() => this.checkMembership(), MEMBERSHIP_POLL_MS);
      this.poll.unref();
    }
  }

  verdicts(): HealthVerdict[] {
    return this.health.verdicts();
  }

  stop(): void {
    clearInterval(this.poll);
    this.poll = undefined;
    this.health.stop();
    this.unlog();
  }

  private apply(): void {
    const loaded = this.loaded;
    if (loaded === undefined) return;
    const membership = this.membership;
    this.membershipText = membership === undefined ? '' : JSON.stringify(membership.toState());
    try {
      const result = compile(loaded, {
        registry: this.registry,
        logSinks: new LogSinks(),
        generation: ++this.generation,
        dryRun: true,
        ...(membership === undefined ? {} : { membership: (u) => membership.effective(u) }),
      });
      result.activate();
      this.health.sync(result.table.upstreams);
    } catch (err) {
      // The workers validated this configuration already; this only guards the supervisor.
      log().error({ error: (err as Error).message }, 'health checks not updated');
    }
  }

  private checkMembership(): void {
    if (this.membership === undefined) return;
    if (JSON.stringify(this.membership.toState()) !== this.membershipText) this.apply();
  }
}
