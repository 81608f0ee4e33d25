/**
 * Service discovery: keeps every dynamic server source of the configuration
 * running and reports what each one finds.
 *
 * - `server NAME resolve` / `server NAME service=S resolve`: asked again when
 *   the answer's TTL runs out (or after `resolver valid=`); a failed query
 *   keeps the last answer and is retried (1 s doubling to 30 s);
 * - `servers_file PATH`: watched.
 *
 * It runs once, where the admin API runs (the single process, or the
 * supervisor), and its findings go to every worker, so all workers use the
 * same server list. configure() is called at start and after every reload:
 * sources that stay keep their last answer and their timer.
 */
import * as dns from 'node:dns';
import * as path from 'node:path';
import type { Config, UpstreamServerConfig } from '../config/schema.js';
import { log } from '../log/error-log.js';
import { FILE_SOURCE, dnsSourceId, isDiscovered, type DiscoveredServer } from '../runtime/membership.js';
import { DnsClient, parseResolverAddress, type DnsServerAddress } from './dns-client.js';
import { resolveServer } from './dns-resolve.js';
import { ServersFileWatcher } from './servers-file.js';

/** Where findings go: the runtime (one process) or the supervisor's broadcast. `undefined`: the source is gone. */
export type DiscoverySink = (upstream: string, source: string, servers: DiscoveredServer[] | undefined) => void;

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;

interface Source {
  stop(): void;
}

export interface DiscoveryStats {
  /** DNS lookups that got an answer / failed. */
  resolutions: number;
  failures: number;
}

export class Discovery {
  private readonly sources = new Map<string, Source>();
  private resolverKey = '';
  private client: DnsClient | undefined;
  private validMs: number | undefined;
  readonly stats: DiscoveryStats = { resolutions: 0, failures: 0 };

  constructor(private readonly sink: DiscoverySink) {}

  /** Starts, keeps or stops sources to match `config`; `baseDir` resolves relative servers_file paths. */
  configure(config: Config, baseDir: string): void {
    const http = config.http;
    const servers = http.resolver?.map(parseResolverAddress) ?? systemResolvers();
    const usable = servers.filter((s): s is DnsServerAddress => typeof s !== 'string');
    for (const bad of servers) if (typeof bad === 'string') log().error({ error: bad }, 'resolver address ignored');
    const resolverKey = JSON.stringify([usable, http.resolver_timeout, http.resolver_valid]);
    if (resolverKey !== this.resolverKey) {
      // New resolvers: every DNS source starts over with them.
      for (const [key, source] of this.sources) {
        if (key.includes('\0dns:') || key.includes('\0srv:')) {
          source.stop();
          this.sources.delete(key);
        }
      }
      this.resolverKey = resolverKey;
      this.client = new DnsClient(usable, http.resolver_timeout);
      this.validMs = http.resolver_valid;
    }
    const wanted = new Map<string, () => Source>();
    for (const u of http.upstreams) {
      for (const s of u.servers) {
        if (!isDiscovered(s)) continue;
        if (http.resolver === undefined && !warnedNoResolver) {
          warnedNoResolver = true;
          log().warn({ resolvers: usable.map((r) => `${r.host}:${r.port}`) }, 'servers with "resolve" and no "resolver": using the system resolvers (/etc/resolv.conf)');
        }
        const id = dnsSourceId(s);
        wanted.set(`${u.name}\0${id}`, () => this.dnsSource(u.name, id, s));
      }
      if (u.servers_file !== undefined) {
        const file = path.resolve(baseDir, u.servers_file);
        wanted.set(`${u.name}\0${FILE_SOURCE}\0${file}`, () => this.fileSource(u.name, file));
      }
    }
    for (const [key, source] of this.sources) {
      if (wanted.has(key)) continue;
      source.stop();
      this.sources.delete(key);
      const [upstream, id] = key.split('\0') as [string, string];
      this.sink(upstream, id, undefined);
    }
    for (const [key, make] of wanted) if (!this.sources.has(key)) this.sources.set(key, make());
  }

  stop(): void {
    for (const s of this.sources.values()) s.stop();
    this.sources.clear();
  }

  private dnsSource(upstream: string, id: string, server: UpstreamServerConfig): Source {
    const client = this.client!;
    const validMs = this.validMs;
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    let retryMs = RETRY_MIN_MS;
    let failing = false;
    const name = server.service === undefined ? server.address : `${server.address} service=${server.service}`;
    const run = async (): Promise<void> => {
      let next: number;
      try {
        const r = await resolveServer(client, server, validMs);
        if (stopped) return;
        this.stats.resolutions++;
        if (failing) log().info({ upstream, server: name }, 'DNS answers again');
        failing = false;
        retryMs = RETRY_MIN_MS;
        this.sink(upstream, id, r.servers);
        next = r.ttlMs;
      } catch (err) {
        if (stopped) return;
        this.stats.failures++;
        if (!failing) log().warn({ upstream, server: name, error: (err as Error).message }, 'DNS lookup failed: keeping the last servers found');
        failing = true;
        next = retryMs;
        retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
      }
      timer = setTimeout(() => void run(), next);
      timer.unref();
    };
    void run();
    return {
      stop() {
        stopped = true;
        if (timer !== undefined) clearTimeout(timer);
      },
    };
  }

  private fileSource(upstream: string, file: string): Source {
    const watcher = new ServersFileWatcher(file, {
      servers: (servers) => this.sink(upstream, FILE_SOURCE, servers),
      error: (message) => log().error({ upstream, file, error: message }, 'servers file not applied: keeping the last valid servers'),
    });
    watcher.start();
    return watcher;
  }
}

let warnedNoResolver = false;

/** The nameservers of /etc/resolv.conf (Docker: 127.0.0.11). */
function systemResolvers(): (DnsServerAddress | string)[] {
  return dns.getServers().map(parseResolverAddress);
}
