/**
 * A real DNS server on loopback for discovery tests: Debian's dnsmasq,
 * unprivileged on a free high port, answering only from a hosts file and SRV
 * records the test writes (`--local=/test/`: names under .test are never
 * forwarded). `setHosts()` rewrites the hosts file and sends SIGHUP, which is
 * how dnsmasq rereads it. Every query is logged (`--log-queries`), so a test
 * can count how often fulcrum asked.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { killWithParent } from '../../src/demo/replicas.js';
import { freePort } from './ports.js';
import { tempDir } from './tmp.js';
import { sleep, waitUntil } from './wait.js';

export const DNSMASQ = '/usr/sbin/dnsmasq';

export function dnsmasqMissing(): string | false {
  return existsSync(DNSMASQ) ? false : `${DNSMASQ} is not installed (apt-get install dnsmasq-base)`;
}

export interface SrvRecord {
  name: string;
  target: string;
  port: number;
  priority: number;
  weight: number;
}

export interface DnsmasqOptions {
  /** name -> addresses */
  hosts: Record<string, string[]>;
  srv?: SrvRecord[];
  /** TTL of every answer, seconds (dnsmasq's --local-ttl). */
  ttl: number;
}

export class Dnsmasq {
  readonly queries: { at: number; name: string; type: string }[] = [];
  private child: ChildProcess | undefined;
  private readonly log: string[] = [];

  private constructor(
    readonly port: number,
    private readonly hostsFile: string,
    private readonly options: DnsmasqOptions,
  ) {}

  static async start(options: DnsmasqOptions): Promise<Dnsmasq> {
    const dir = tempDir('fulcrum-dns-');
    const port = await freePort();
    const d = new Dnsmasq(port, join(dir, 'hosts'), options);
    d.writeHosts(options.hosts);
    await d.launch();
    return d;
  }

  /** "127.0.0.1:PORT", for `resolver`. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  private writeHosts(hosts: Record<string, string[]>): void {
    const lines: string[] = [];
    for (const [name, addresses] of Object.entries(hosts)) for (const a of addresses) lines.push(`${a} ${name}`);
    writeFileSync(this.hostsFile, lines.join('\n') + '\n');
  }

  private async launch(): Promise<void> {
    const args = [
      '--no-daemon', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--local=/test/',
      `--port=${this.port}`, '--listen-address=127.0.0.1', '--bind-interfaces',
      `--addn-hosts=${this.hostsFile}`, `--local-ttl=${this.options.ttl}`, '--log-queries', '--pid-file=', '--user=',
      ...(this.options.srv ?? []).map((s) => `--srv-host=${s.name},${s.target},${s.port},${s.priority},${s.weight}`),
    ];
    const child = spawn(DNSMASQ, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    killWithParent(child);
    this.child = child;
    createInterface({ input: child.stderr! }).on('line', (line) => {
      this.log.push(line);
      const m = /query\[(\w+)\] (\S+) from/.exec(line);
      if (m !== null) this.queries.push({ at: performance.now(), type: m[1]!, name: m[2]! });
    });
    await waitUntil(() => this.log.some((l) => l.includes('read ' + this.hostsFile)), { timeoutMs: 5000, description: `dnsmasq started\n${this.log.join('\n')}` });
  }

  /** Replaces the hosts file and makes dnsmasq read it again (SIGHUP). */
  async setHosts(hosts: Record<string, string[]>): Promise<void> {
    const before = this.log.length;
    this.writeHosts(hosts);
    this.child!.kill('SIGHUP');
    await waitUntil(() => this.log.slice(before).some((l) => l.includes('read ' + this.hostsFile)), { timeoutMs: 5000, description: 'dnsmasq reread its hosts file' });
  }

  /** Queries for `name` (any type) since `since` (performance.now()). */
  queriesFor(name: string, type: string, since = 0): number {
    return this.queries.filter((q) => q.name === name && q.type === type && q.at >= since).length;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(3000)]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}
