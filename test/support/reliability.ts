/**
 * Helpers for the reliability suite (test/reliability/, test/soak/): a
 * fulcrum started on a small nginx-syntax config, a raw client that records
 * when bytes and closes arrive, process probes (RSS, open file descriptors)
 * and a blackholed upstream in a network namespace.
 */
import net from 'node:net';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { killWithParent } from '../../src/demo/replicas.js';
import { startFulcrum, type FulcrumProcess } from './fulcrum.js';
import { parseHttpResponses, type ParsedRawResponse } from './http-client.js';
import { freePort } from './ports.js';
import { rssBytes } from './seed.js';
import { sleep } from './wait.js';

// ---------------------------------------------------------------------------
// fulcrum on a small config

export interface ProxyConfigParts {
  /** Directives at the main level (worker_processes, ...). */
  main?: string;
  /** Inside `events { }` (worker_connections). */
  events?: string;
  /** Inside `http { }`, before the server: upstream blocks, http-level settings. Access logs are off unless set here. */
  http?: string;
  /** The body of the one `server` block, after its `listen`. */
  server: string;
}

/** The config text for `parts`, listening on 127.0.0.1:port; `{{PORT}}` anywhere in the parts is replaced by the port. */
export function proxyConfig(port: number, parts: ProxyConfigParts): string {
  const text = [
    parts.main ?? '',
    `events { ${parts.events ?? ''} }`,
    'http {',
    /\baccess_log\b/.test(parts.http ?? '') ? '' : '  access_log off;',
    parts.http ?? '',
    '  server {',
    `    listen 127.0.0.1:${port};`,
    parts.server,
    '  }',
    '}',
    '',
  ].join('\n');
  return text.replaceAll('{{PORT}}', String(port));
}

export interface Proxy {
  fulcrum: FulcrumProcess;
  port: number;
  config: string;
  stop(): Promise<void>;
}

/** Writes the config for `parts` on a free port and starts fulcrum on it. Always `stop()` it. */
export async function startProxy(parts: ProxyConfigParts): Promise<Proxy> {
  const port = await freePort();
  const config = proxyConfig(port, parts);
  const fulcrum = await startFulcrum({ config });
  return {
    fulcrum,
    port,
    config,
    stop: async () => {
      await fulcrum.stop('SIGTERM', 5000).catch(() => fulcrum.kill());
    },
  };
}

/** Lines fulcrum wrote to stdout that parse as JSON objects (an `access_log stdout json;` log). */
export function jsonLines(fulcrum: FulcrumProcess): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of fulcrum.stdout) {
    try {
      const value: unknown = JSON.parse(line);
      if (value !== null && typeof value === 'object') out.push(value as Record<string, unknown>);
    } catch {
      // not a JSON line
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// A raw client that keeps timings

/**
 * One TCP connection, recording every byte received and when the server
 * closed it. Tests drive it step by step (slowloris, slow bodies, clients
 * that stop reading) and look at `responses()`, `closedAt`, `errorCode`.
 */
export class RawClient {
  readonly socket: net.Socket;
  readonly openedAt: number;
  /** performance.now() when the first byte arrived. */
  firstByteAt: number | undefined;
  /** performance.now() when the server's FIN arrived, or the connection failed or closed. */
  closedAt: number | undefined;
  errorCode: string | undefined;
  bytes = 0;
  private chunks: Buffer[] = [];
  private kept = 0;
  private readonly keepBytes: number;
  private waiters: Array<() => void> = [];

  private constructor(socket: net.Socket, keepBytes: number) {
    this.socket = socket;
    this.openedAt = performance.now();
    this.keepBytes = keepBytes;
    socket.on('data', (chunk: Buffer) => {
      this.firstByteAt ??= performance.now();
      this.bytes += chunk.length;
      if (this.kept < this.keepBytes) {
        const piece = this.kept + chunk.length <= this.keepBytes ? chunk : chunk.subarray(0, this.keepBytes - this.kept);
        this.chunks.push(piece);
        this.kept += piece.length;
      }
      this.notify();
    });
    socket.on('end', () => this.markClosed());
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.errorCode ??= err.code ?? err.message;
      this.markClosed();
    });
    socket.on('close', () => this.markClosed());
  }

  /**
   * Connects to 127.0.0.1:port. `keepBytes` limits how much of what arrives
   * is kept in `data` (every byte is still counted in `bytes`), for large downloads.
   */
  static connect(port: number, opts: { host?: string; keepBytes?: number } = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: opts.host ?? '127.0.0.1', port, allowHalfOpen: true });
      const client = new RawClient(socket, opts.keepBytes ?? Infinity);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(client);
      });
      socket.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.closedAt !== undefined;
  }

  get data(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  get text(): string {
    return this.data.toString('latin1');
  }

  responses(methods?: string[]): ParsedRawResponse[] {
    return parseHttpResponses(this.data, { methods, connectionClosed: this.closed });
  }

  /** Resolves once the bytes are handed to the kernel; never rejects (a reset socket just drops them). */
  write(bytes: string | Buffer): Promise<void> {
    if (this.socket.destroyed || !this.socket.writable) return Promise.resolve();
    return new Promise((resolve) => this.socket.write(bytes, () => resolve()));
  }

  /** Resolves true once `predicate` holds, false after `timeoutMs`. Re-checked on every byte and on close. */
  async until(predicate: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (!predicate()) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, 100));
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.waiters.push(done);
      });
    }
    return true;
  }

  waitForClose(timeoutMs: number): Promise<boolean> {
    return this.until(() => this.closed, timeoutMs);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private markClosed(): void {
    this.closedAt ??= performance.now();
    this.notify();
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/**
 * Sends `bytes` on a new connection and resolves as soon as `count` complete
 * responses have arrived or the server closed the connection (or after
 * `timeoutMs`), without rawRequest's quiet period: for tests that make many
 * requests. `closed` tells whether the server had closed it by then; with
 * `waitClose` the wait goes on (up to `timeoutMs`) for the close too.
 */
export async function exchange(
  port: number,
  bytes: string | Buffer,
  opts: { count?: number; timeoutMs?: number; waitClose?: boolean; methods?: string[] } = {},
): Promise<{ responses: ParsedRawResponse[]; closed: boolean; data: Buffer; client: RawClient }> {
  const client = await RawClient.connect(port);
  await client.write(bytes);
  const count = opts.count ?? 1;
  const enough = () => {
    if (client.closed) return true;
    const rs = client.responses(opts.methods);
    return rs.length >= count && rs[count - 1]!.complete && !opts.waitClose;
  };
  await client.until(enough, opts.timeoutMs ?? 5000);
  const result = { responses: client.responses(opts.methods), closed: client.closed, data: client.data, client };
  client.destroy();
  return result;
}

/** A minimal GET request head. */
export function get(path: string, host = 'localhost', extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`;
}

// ---------------------------------------------------------------------------
// Process probes

/** Resident set size of fulcrum (and its workers) in MiB. */
export function rssMiB(pid: number): number {
  const bytes = rssBytes(pid);
  if (bytes === undefined) throw new Error(`no /proc/${pid}/status: cannot read the RSS`);
  return bytes / (1024 * 1024);
}

/** Open file descriptors of a process (sockets included). */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Whether a process is alive and not a zombie. */
export function alive(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Samples `fn` every `intervalMs` until `stop()`; returns the samples. */
export function sampler<T>(fn: () => T, intervalMs: number): { samples: T[]; stop(): T[] } {
  const samples: T[] = [];
  const take = () => {
    try {
      samples.push(fn());
    } catch {
      // the process may be gone: the test's own assertions say so
    }
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    samples,
    stop: () => {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

// ---------------------------------------------------------------------------
// A steady prober: "other clients are served normally"

export interface ProbeResult {
  sent: number;
  ok: number;
  failures: string[];
  maxLatencyMs: number;
}

/**
 * Sends `GET path` on a fresh connection every `intervalMs` until stopped, and
 * records how many got `expectStatus` and the slowest answer. Each probe has
 * its own deadline (`timeoutMs`), so a probe that hangs counts as a failure.
 */
export function startProber(port: number, path: string, opts: { intervalMs?: number; timeoutMs?: number; expectStatus?: number } = {}): { stop(): Promise<ProbeResult> } {
  const result: ProbeResult = { sent: 0, ok: 0, failures: [], maxLatencyMs: 0 };
  const timeoutMs = opts.timeoutMs ?? 2000;
  let running = true;
  const inFlight = new Set<Promise<void>>();
  const one = async () => {
    result.sent++;
    const started = performance.now();
    const outcome = await probeOnce(port, path, timeoutMs);
    const latency = performance.now() - started;
    result.maxLatencyMs = Math.max(result.maxLatencyMs, latency);
    if (outcome === (opts.expectStatus ?? 200)) result.ok++;
    else result.failures.push(`${outcome} after ${Math.round(latency)} ms`);
  };
  const loop = (async () => {
    while (running) {
      const p = one();
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
      await sleep(opts.intervalMs ?? 100);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      await Promise.all(inFlight);
      return result;
    },
  };
}

/** One GET on a fresh connection: the status, or a word saying what went wrong. */
export function probeOnce(port: number, path: string, timeoutMs: number): Promise<number | string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (outcome: number | string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    socket.on('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n`));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const [response] = parseHttpResponses(Buffer.concat(chunks), { connectionClosed: false });
      if (response !== undefined && response.complete) finish(response.status);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? 'error'));
    socket.on('close', () => {
      const [response] = parseHttpResponses(Buffer.concat(chunks), { connectionClosed: true });
      finish(response?.complete ? response.status : 'closed');
    });
  });
}

// ---------------------------------------------------------------------------
// A blackholed upstream: a network namespace behind a veth pair, with an
// iptables DROP rule for TCP inside it (needs root / CAP_NET_ADMIN).

const BACKEND_SCRIPT = fileURLToPath(new URL('../../src/demo/backend.js', import.meta.url));

export interface Blackhole {
  /** The address inside the namespace, reachable from the host. */
  readonly address: string;
  /** Starts a demo backend inside the namespace on address:port. */
  startBackend(port: number, name: string): Promise<void>;
  /** Adds (true) or removes (false) the DROP rule: every TCP packet into the namespace is dropped. */
  drop(on: boolean): void;
  destroy(): Promise<void>;
}

function run(cmd: string, args: string[]): { ok: boolean; output: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim() };
}

/**
 * Creates the namespace, or returns a string saying why it cannot be made
 * here (not root, no `ip`/`iptables`, no CAP_NET_ADMIN), for `t.skip()`.
 */
export function createBlackhole(): Blackhole | string {
  if (process.getuid?.() !== 0) return 'needs root (ip netns, iptables)';
  const tag = `${process.pid % 100000}`;
  const ns = `fulcrum-bh-${tag}`;
  const hostIf = `fbh${tag}`;
  const nsIf = `fbn${tag}`;
  const subnet = 1 + (process.pid % 250);
  const hostAddr = `10.231.${subnet}.1`;
  const nsAddr = `10.231.${subnet}.2`;
  const steps: Array<[string, string[]]> = [
    ['ip', ['netns', 'add', ns]],
    ['ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf]],
    ['ip', ['link', 'set', nsIf, 'netns', ns]],
    ['ip', ['addr', 'add', `${hostAddr}/30`, 'dev', hostIf]],
    ['ip', ['link', 'set', hostIf, 'up']],
    ['ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', `${nsAddr}/30`, 'dev', nsIf]],
    ['ip', ['netns', 'exec', ns, 'ip', 'link', 'set', nsIf, 'up']],
    ['ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']],
    ['ip', ['netns', 'exec', ns, 'iptables', '-L', '-n']],
  ];
  let cleaned = false;
  const cleanup = () => {
    if (cleaned) return;
    cleaned = true;
    process.off('exit', cleanup);
    run('ip', ['netns', 'del', ns]);
    run('ip', ['link', 'del', hostIf]);
  };
  process.on('exit', cleanup);
  for (const [cmd, args] of steps) {
    const r = run(cmd, args);
    if (!r.ok) {
      cleanup();
      return `cannot set up a network namespace here (${cmd} ${args.join(' ')}: ${r.output || 'failed'})`;
    }
  }
  const children: ChildProcess[] = [];
  return {
    address: nsAddr,
    startBackend: (port, name) =>
      new Promise((resolve, reject) => {
        const child = spawn('ip', ['netns', 'exec', ns, process.execPath, BACKEND_SCRIPT, '--host', nsAddr, '--port', String(port), '--name', name], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        children.push(child);
        killWithParent(child);
        const timer = setTimeout(() => reject(new Error('backend in the namespace did not start')), 10_000);
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`backend in the namespace exited (${code})`));
        });
        createInterface({ input: child.stdout! }).on('line', (line) => {
          if (line.includes('"listening"')) {
            clearTimeout(timer);
            resolve();
          }
        });
      }),
    drop: (on) => {
      const r = run('ip', ['netns', 'exec', ns, 'iptables', on ? '-A' : '-D', 'INPUT', '-p', 'tcp', '-j', 'DROP']);
      if (!r.ok) throw new Error(`iptables: ${r.output}`);
    },
    destroy: async () => {
      for (const child of children) {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGKILL');
          await Promise.race([exited, sleep(3000)]);
        }
      }
      cleanup();
    },
  };
}

// ---------------------------------------------------------------------------
// Small statistics

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
