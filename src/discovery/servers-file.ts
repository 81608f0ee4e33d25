/**
 * The file provider: `servers_file PATH` in an upstream names a JSON or YAML
 * file listing servers, with the same keys as the config's servers:
 *
 *   # backends.yaml
 *   - 10.0.0.11:8080
 *   - { address: 10.0.0.12:8080, weight: 2 }
 *   - { address: 10.0.0.13:8080, backup: true }
 *
 * (or `{ "servers": [...] }`). The file is watched; each valid version is
 * applied as it is written, without a reload. An invalid version is reported
 * and the servers of the last valid one are kept; so is a missing file.
 * Write it atomically (write a temporary file, then rename) so the watcher
 * never sees half a file; a half file is only reported and retried anyway.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { yamlLibrary } from '../config/yaml-parser.js';
import { UpstreamServer, type UpstreamServerConfig } from '../config/schema.js';
import type { DiscoveredServer } from '../runtime/membership.js';
import { parseServerAddress } from '../upstream/group.js';

/** Parses a servers file; returns the servers or a message saying what is wrong. */
export function parseServersFile(text: string, file: string): DiscoveredServer[] | string {
  let data: unknown;
  try {
    data = file.toLowerCase().endsWith('.json') ? JSON.parse(text) : yamlLibrary().parse(text);
  } catch (err) {
    return `${file}: ${(err as Error).message.split('\n')[0]}`;
  }
  if (data === null || data === undefined) data = [];
  if (typeof data === 'object' && data !== null && !Array.isArray(data) && 'servers' in data) data = (data as { servers: unknown }).servers;
  if (!Array.isArray(data)) return `${file}: expected a list of servers (or {"servers": [...]})`;
  const out: DiscoveredServer[] = [];
  const seen = new Set<string>();
  for (const [i, entry] of data.entries()) {
    const parsed = UpstreamServer.safeParse(typeof entry === 'string' ? { address: entry } : entry);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const where = issue.path.length > 0 ? ` "${issue.path.join('.')}"` : '';
      return `${file}: server ${i + 1}${where}: ${issue.code === 'unrecognized_keys' ? `unknown key "${issue.keys.join('", "')}"` : issue.message}`;
    }
    const server: UpstreamServerConfig = parsed.data;
    const endpoint = parseServerAddress(server.address);
    if (typeof endpoint === 'string') return `${file}: server ${i + 1}: ${endpoint}`;
    if (seen.has(server.address)) return `${file}: server ${i + 1}: "${server.address}" is listed twice`;
    seen.add(server.address);
    out.push({ address: server.address, params: server });
  }
  return out;
}

export interface ServersFileEvents {
  servers(servers: DiscoveredServer[]): void;
  error(message: string): void;
}

/** Watches one servers file: fs.watch on its directory for speed, a 1 s stat poll as a fallback (bind mounts, editors). */
export class ServersFileWatcher {
  private dirWatcher: fs.FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private lastHash = '';
  private lastError = '';
  private stopped = false;

  constructor(
    readonly file: string,
    private readonly events: ServersFileEvents,
    private readonly pollMs = 1000,
  ) {}

  start(): void {
    this.check();
    try {
      this.dirWatcher = fs.watch(path.dirname(this.file), (_event, name) => {
        if (name === null || name === path.basename(this.file)) this.schedule();
      });
      this.dirWatcher.on('error', () => undefined);
    } catch {
      // the directory may not exist yet: polling covers it
    }
    fs.watchFile(this.file, { interval: this.pollMs, persistent: false }, () => this.schedule());
  }

  stop(): void {
    this.stopped = true;
    this.dirWatcher?.close();
    fs.unwatchFile(this.file);
    if (this.debounce !== undefined) clearTimeout(this.debounce);
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.debounce !== undefined) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.check(), 50);
    this.debounce.unref();
  }

  /** Reads the file and reports it when its content changed. */
  check(): void {
    if (this.stopped) return;
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      this.reportError(`servers file ${this.file}: ${code === 'ENOENT' ? 'does not exist' : (err as Error).message}`);
      return;
    }
    const hash = createHash('sha256').update(text).digest('hex');
    if (hash === this.lastHash) return;
    const parsed = parseServersFile(text, this.file);
    if (typeof parsed === 'string') {
      this.reportError(parsed);
      return;
    }
    this.lastHash = hash;
    this.lastError = '';
    this.events.servers(parsed);
  }

  private reportError(message: string): void {
    this.lastHash = '';
    if (message === this.lastError) return;
    this.lastError = message;
    this.events.error(message);
  }
}
