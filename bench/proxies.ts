/**
 * The proxies under test and how each is started from the shared parameters:
 * fulcrum and nginx both read the same rendered bench/configs/proxy.conf;
 * HAProxy reads bench/configs/haproxy.cfg rendered from the same values.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { HELLO_BODY } from './backends.js';
import type { ProxyName } from './cli.js';
import { writeHaproxyCfg, writeProxyConf, type ProxyConfigParams } from './configs.js';
import { REPO_ROOT } from './paths.js';
import { ManagedProcess } from './processes.js';
import { freePort, httpRequest, waitForPort } from './probes.js';
import { openFileLimit } from './procfs.js';
import { allCpus, commandExists, PROXY_CPUS } from './system.js';
import type { TlsFiles } from './tls.js';

export interface ProxyDef {
  name: ProxyName;
  /** Why this proxy cannot be benchmarked here, or undefined if it can. */
  unavailable(): string | undefined;
  argv(tmp: string, params: ProxyConfigParams): string[];
  startupTimeoutMs: number;
  /** Its workers are threads of one process (HAProxy), not processes. */
  workersAreThreads?: boolean;
  /** Anything about how this proxy had to be configured here that readers must know. */
  caveats?(): string[];
}

/** Single-quotes a string for sh. */
function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function fulcrumDef(fulcrumCmd: string): ProxyDef {
  return {
    name: 'fulcrum',
    // Always attempted: if it cannot start (not built yet, missing
    // bin/fulcrum.js), the start failure reports why, with its stderr.
    unavailable: () => undefined,
    argv: (tmp, params) => {
      const conf = writeProxyConf(tmp, params);
      // `exec` so that the pid the harness tracks is fulcrum itself, not sh.
      return ['sh', '-c', `exec ${fulcrumCmd.replaceAll('{config}', shellQuote(conf))}`];
    },
    // Node start-up plus compiling/loading the config; generous on a busy core.
    startupTimeoutMs: 20_000,
  };
}

export const nginxDef: ProxyDef = {
  name: 'nginx',
  unavailable: () => (commandExists('nginx') ? undefined : 'nginx not found (apt-get install nginx)'),
  argv: (tmp, params) => {
    const conf = writeProxyConf(tmp, params);
    const pid = join(tmp, `nginx-${params.port}.pid`);
    // The shared file has no daemon/pid/error_log lines, so these cannot
    // clash with it ("directive is duplicate").
    return ['nginx', '-p', tmp, '-c', conf, '-e', 'stderr', '-g', `daemon off; master_process on; pid ${pid};`];
  },
  startupTimeoutMs: 10_000,
};

const HAPROXY_MAXCONN = 20_000;

/**
 * HAProxy reserves two descriptors per connection (client and server side)
 * and refuses to start if maxconn does not fit the open-file limit, which it
 * inherits from the harness. nginx merely warns in the same situation.
 */
function haproxyMaxconn(): number {
  const { hard } = openFileLimit();
  return Math.min(HAPROXY_MAXCONN, Math.floor((hard - 200) / 2));
}

export const haproxyDef: ProxyDef = {
  name: 'haproxy',
  unavailable: () => (commandExists('haproxy') ? undefined : 'haproxy not found (apt-get install haproxy)'),
  // -db: stay in the foreground, like nginx's "daemon off".
  argv: (tmp, params) => ['haproxy', '-db', '-f', writeHaproxyCfg(tmp, params, haproxyMaxconn())],
  startupTimeoutMs: 10_000,
  workersAreThreads: true,
  caveats: () => {
    const maxconn = haproxyMaxconn();
    if (maxconn >= HAPROXY_MAXCONN) return [];
    return [
      `HAProxy ran with maxconn ${maxconn}, not ${HAPROXY_MAXCONN}: the open-file limit is ` +
        `${openFileLimit().hard} and could not be raised (HAProxy needs 2 per connection), ` +
        'so it cannot hold all 10,000 idle connections.',
    ];
  },
};

export class StartError extends Error {}

export interface RunningProxy {
  name: ProxyName;
  port: number;
  proc: ManagedProcess;
  /** The root of the process tree whose CPU and memory are measured. */
  pid: number;
}

/**
 * Starts a proxy on a fresh port and waits until it proxies GET / correctly.
 * Throws StartError with the stderr tail if it does not.
 */
export async function startProxy(
  def: ProxyDef,
  tmp: string,
  backendPorts: readonly [number, number, number],
  workers: number,
  pinned: boolean,
  tls?: TlsFiles,
  seed = false,
): Promise<RunningProxy> {
  const port = await freePort();
  const dir = join(tmp, `${def.name}-${port}`);
  mkdirSync(dir, { recursive: true });
  const proc = new ManagedProcess(def.name, def.argv(dir, { port, backendPorts, workers, tls, seed }), {
    cpus: pinned ? PROXY_CPUS : allCpus(),
    cwd: REPO_ROOT,
  });
  try {
    await waitForPort(port, proc, def.startupTimeoutMs);
    await waitForHello(port, proc, def.startupTimeoutMs, tls, seed ? '/api/hello' : '/');
  } catch (err) {
    await proc.stop(2000);
    const reason = err instanceof Error ? err.message : String(err);
    const tail = proc.stderrTail();
    throw new StartError(`${def.name}: failed to start (${reason})${tail ? `\n${indent(tail)}` : ''}`);
  }
  return { name: def.name, port, proc, pid: proc.pid };
}

/**
 * Accepting connections is not enough (nginx's master listens before its
 * workers exist; a broken proxy may accept and then fail): a GET of `path`
 * (/, or /api/hello in the seed's configuration) must come back from a
 * backend with the right body.
 */
async function waitForHello(
  port: number,
  proc: ManagedProcess,
  timeoutMs: number,
  tls: TlsFiles | undefined,
  path: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (proc.hasExited) throw new Error(`exited (${proc.exitDescription})`);
    try {
      const r = await httpRequest(port, path, { timeoutMs: 2000, tlsCa: tls?.cert });
      if (r.status === 200 && r.body.toString() === HELLO_BODY) return;
      last = `GET ${path} returned ${r.status} "${r.body.toString().slice(0, 60)}"`;
    } catch (err) {
      last = `GET ${path} failed: ${err instanceof Error ? err.message : String(err)}`;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(last || `no answer to GET ${path}`);
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}
