/**
 * Active health checks (nginx Plus's `health_check`, HAProxy's `check`): each
 * server of an upstream with `health_check` is probed every `interval`, by an
 * HTTP request (method, uri, Host header; the status must match `status`,
 * the body `body` when given) or a TCP connect, each within `timeout`.
 * `fall` failed probes in a row take the server out (`healthy = false`), and
 * `rise` passed probes in a row put it back. Probes of an upstream start at
 * random points of the first interval (and each may wait up to `jitter`
 * more), so a hundred servers are not probed in one burst.
 *
 * Passive and active health combine: a server is used only if neither holds
 * it out (ServerState.isAvailable). Every verdict change is a health event
 * (source "active", with the reason), which the log shows as "upstream
 * server marked down" / "back up".
 *
 * Lifecycle: ActiveHealth.sync() after each configuration goes live (and
 * after membership changes, through the group's onServersChanged) keeps the
 * probers of servers that stay, with their counters and timers, starts
 * probers for new servers, and stops those of removed servers; an upstream
 * that loses its health_check gets its servers back. stop() ends everything.
 *
 * With worker_processes > 1 the supervisor runs the only ActiveHealth, and
 * broadcasts verdicts (HealthVerdict) to the workers, which apply them with
 * applyVerdict(): each server is probed once, not once per worker.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { HealthCheckConfig } from '../config/schema.js';
import { log } from '../log/error-log.js';
import { MANDATORY_PENDING, type UpstreamGroup } from '../upstream/group.js';
import type { ServerState } from '../upstream/server-state.js';
import type { UpstreamTls } from '../upstream/tls-settings.js';
import { emitHealthEvent, onHealthEvent } from './passive.js';

/** How much of a probe response body is read for `body=`. */
const MAX_BODY = 64 * 1024;

/** A verdict as sent from the supervisor to the workers. */
export interface HealthVerdict {
  key: string;
  healthy: boolean;
  reason: string;
  /** Wall-clock ms of the change (performance.now() differs between processes). */
  at: number;
}

export interface ProbeResult {
  ok: boolean;
  /** What was seen: "status 200", "status 503", "connect ECONNREFUSED", "timed out after 2000 ms"... */
  detail: string;
}

/** Compiles `status` items ("200-399", "!500") into a predicate. */
export function statusMatcher(items: readonly string[]): (status: number) => boolean {
  const positive: [number, number][] = [];
  const negative: [number, number][] = [];
  for (const item of items) {
    const neg = item.startsWith('!');
    const [lo, hi] = (neg ? item.slice(1) : item).split('-').map(Number) as [number, number | undefined];
    (neg ? negative : positive).push([lo, hi ?? lo]);
  }
  return (status) => (positive.length === 0 || positive.some(([lo, hi]) => status >= lo && status <= hi)) && !negative.some(([lo, hi]) => status >= lo && status <= hi);
}

/** One probe of `server`; calls `done` exactly once. Returns a function that cancels it. */
export function probe(server: ServerState, config: HealthCheckConfig, tls: UpstreamTls | undefined, done: (result: ProbeResult) => void): () => void {
  const host = server.endpoint.host;
  const port = config.port ?? server.endpoint.port;
  let finished = false;
  let cleanup: () => void = () => undefined;
  const finish = (ok: boolean, detail: string): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    cleanup();
    done({ ok, detail });
  };
  const timer = setTimeout(() => finish(false, `timed out after ${config.timeout} ms`), config.timeout);
  timer.unref();

  if (config.type === 'tcp') {
    const socket = net.connect({ host, port });
    cleanup = () => socket.destroy();
    socket.once('connect', () => finish(true, 'connected'));
    socket.once('error', (err: NodeJS.ErrnoException) => finish(false, `connect ${err.code ?? err.message}`));
    return () => finish(false, 'cancelled');
  }

  const matches = statusMatcher(config.status);
  const bodyRe = config.body === undefined ? undefined : new RegExp(config.body);
  const what = `${config.method} ${config.uri}`;
  const options: https.RequestOptions = {
    host,
    port,
    method: config.method,
    path: config.uri,
    headers: { Host: config.host ?? server.address, 'User-Agent': 'fulcrum-health-check', Connection: 'close' },
    agent: false,
    // A probe checks that the service answers, not who it is; it connects as
    // the proxy does (SNI, client certificate, protocols: proxy_ssl_*).
    ...tls?.connectOptions,
    rejectUnauthorized: false,
  };
  const req = (tls ? https : http).request(options);
  cleanup = () => req.destroy();
  req.once('error', (err: NodeJS.ErrnoException) => finish(false, `${err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET' ? 'connect ' : ''}${err.code ?? err.message} on ${what}`));
  req.once('response', (res) => {
    const status = res.statusCode ?? 0;
    if (!matches(status)) {
      res.resume();
      return finish(false, `status ${status} on ${what}`);
    }
    if (bodyRe === undefined) {
      res.resume();
      res.once('end', () => finish(true, `status ${status}`));
      res.once('error', () => finish(false, `response cut off on ${what}`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const check = (): void => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (bodyRe.test(body)) finish(true, `status ${status}, body matches`);
      else finish(false, `body of ${what} does not match /${config.body}/`);
    };
    res.on('data', (chunk: Buffer) => {
      if (size >= MAX_BODY) return;
      chunks.push(chunk);
      size += chunk.length;
      if (size >= MAX_BODY) check();
    });
    res.once('end', check);
    res.once('error', () => finish(false, `response cut off on ${what}`));
  });
  req.end();
  return () => finish(false, 'cancelled');
}

/** Sets an active-health verdict and emits the event. */
function setHealth(server: ServerState, healthy: boolean, reason: string, at: number, remote: boolean): void {
  server.healthy = healthy;
  server.healthChangedAt = at;
  server.healthReason = reason;
  emitHealthEvent({ server, state: healthy ? 'up' : 'down', source: 'active', reason, at, remote });
}

/** Applies a verdict from the supervisor (worker side). Not logged again: the supervisor did. */
export function applyVerdict(server: ServerState, verdict: HealthVerdict): void {
  const at = verdict.at - performance.timeOrigin;
  if (server.healthy === verdict.healthy) {
    server.healthReason = verdict.reason;
    return;
  }
  setHealth(server, verdict.healthy, verdict.reason, at, true);
}

/** Probes one server on its own timer. */
class Prober {
  private timer: NodeJS.Timeout | undefined;
  private cancel: (() => void) | undefined;
  private stopped = false;

  constructor(
    readonly server: ServerState,
    private readonly checker: UpstreamChecker,
  ) {}

  start(delayMs: number): void {
    this.timer = setTimeout(() => this.run(), delayMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.cancel?.();
  }

  private run(): void {
    if (this.stopped) return;
    const started = performance.now();
    this.cancel = probe(this.server, this.checker.config, this.checker.tls, (result) => {
      this.cancel = undefined;
      if (this.stopped) return;
      this.checker.verdict(this.server, result, performance.now());
      const c = this.checker.config;
      this.start(Math.max(0, c.interval - (performance.now() - started)) + (c.jitter > 0 ? this.checker.random() * c.jitter : 0));
    });
  }
}

/** The probers of one upstream. */
class UpstreamChecker {
  readonly probers = new Map<ServerState, Prober>();

  constructor(
    readonly upstream: string,
    public config: HealthCheckConfig,
    public tls: UpstreamTls | undefined,
    readonly random: () => number,
    private readonly onChange: ((server: ServerState, verdict: HealthVerdict) => void) | undefined,
  ) {}

  /** Follows the group's server list: new servers get a prober, removed ones lose theirs. */
  update(config: HealthCheckConfig, group: UpstreamGroup): void {
    this.config = config;
    this.tls = group.tls;
    const wanted = new Set(group.servers);
    for (const [server, prober] of this.probers) {
      if (!wanted.has(server)) {
        prober.stop();
        this.probers.delete(server);
      }
    }
    for (const server of group.servers) {
      if (this.probers.has(server)) continue;
      const prober = new Prober(server, this);
      this.probers.set(server, prober);
      // A server held out until its first check is probed at once; the others at a random point of the first interval.
      prober.start(!server.healthy && server.healthReason === MANDATORY_PENDING ? 0 : this.random() * config.interval);
    }
  }

  verdict(server: ServerState, result: ProbeResult, at: number): void {
    const c = this.config;
    if (result.ok) {
      server.probeFails = 0;
      server.probePasses++;
      const pending = !server.healthy && server.healthReason === MANDATORY_PENDING;
      if (!server.healthy && (pending || server.probePasses >= c.rise)) {
        const reason = pending ? `first health check passed (${result.detail})` : `${server.probePasses} health check(s) passed in a row (${result.detail})`;
        this.change(server, true, reason, at);
      }
    } else {
      server.probePasses = 0;
      server.probeFails++;
      if (server.healthy && server.probeFails >= c.fall) {
        this.change(server, false, `${server.probeFails} health check(s) failed in a row, last: ${result.detail}`, at);
      } else if (!server.healthy) {
        if (server.healthReason !== MANDATORY_PENDING) server.healthReason = `${server.probeFails} health check(s) failed in a row, last: ${result.detail}`;
      }
    }
  }

  private change(server: ServerState, healthy: boolean, reason: string, at: number): void {
    setHealth(server, healthy, reason, at, false);
    this.onChange?.(server, { key: server.key, healthy, reason, at: performance.timeOrigin + at });
  }

  /** Stops probing; servers held out by these checks are given back (their upstream lost its health_check, or fulcrum stops). */
  stop(restore: boolean): void {
    for (const [server, prober] of this.probers) {
      prober.stop();
      server.probePasses = 0;
      server.probeFails = 0;
      if (restore && !server.healthy) this.change(server, true, 'health_check removed from the configuration', performance.now());
    }
    this.probers.clear();
  }
}

export class ActiveHealth {
  private readonly checkers = new Map<string, UpstreamChecker>();

  constructor(
    private readonly onChange?: (server: ServerState, verdict: HealthVerdict) => void,
    private readonly random: () => number = Math.random,
  ) {}

  /** Applies a configuration that just went live (or a membership change): see the module comment. */
  sync(groups: ReadonlyMap<string, UpstreamGroup>): void {
    const seen = new Set<string>();
    for (const group of groups.values()) {
      const config = group.config?.health_check;
      if (config === undefined || group.implicit) continue;
      seen.add(group.name);
      let checker = this.checkers.get(group.name);
      if (checker === undefined) {
        checker = new UpstreamChecker(group.name, config, group.tls, this.random, this.onChange);
        this.checkers.set(group.name, checker);
      }
      const c = checker;
      group.onServersChanged = (g) => c.update(g.config?.health_check ?? c.config, g);
      checker.update(config, group);
    }
    for (const [name, checker] of this.checkers) {
      if (seen.has(name)) continue;
      checker.stop(true);
      this.checkers.delete(name);
    }
  }

  /** Every checked server's current verdict (sent to a worker that starts or reloads). */
  verdicts(): HealthVerdict[] {
    const out: HealthVerdict[] = [];
    for (const checker of this.checkers.values()) {
      for (const server of checker.probers.keys()) {
        out.push({ key: server.key, healthy: server.healthy, reason: server.healthReason, at: performance.timeOrigin + server.healthChangedAt });
      }
    }
    return out;
  }

  /** Servers being probed, by upstream (tests, admin). */
  probed(): Map<string, ServerState[]> {
    return new Map([...this.checkers].map(([name, c]) => [name, [...c.probers.keys()]]));
  }

  stop(): void {
    for (const checker of this.checkers.values()) checker.stop(false);
    this.checkers.clear();
  }
}

/**
 * Logs active-health transitions, for the supervisor (a single process's
 * Runtime logs every health event itself). Returns the unsubscribe function.
 */
export function logActiveHealthEvents(): () => void {
  return onHealthEvent((e) => {
    if (e.remote === true || e.source !== 'active') return;
    log().warn({ upstream: e.server.upstream, server: e.server.address, state: e.state, source: e.source, reason: e.reason }, e.state === 'down' ? 'upstream server marked down' : 'upstream server back up');
  });
}
