/**
 * `watch_config on`: reload when the configuration file, or a file it
 * includes, changes. Changes are noticed by fs.watch on the files'
 * directories (editors and config managers often replace files by renaming)
 * and by a stat poll every 500 ms as a fallback; a reload happens only when
 * the content really changed (a hash over every file), 300 ms after the last
 * change, so a save in several writes reloads once. A broken save is
 * reported like a failed SIGHUP reload and the running config keeps serving.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

const SETTLE_MS = 300;
const POLL_MS = 500;

export class ConfigWatcher {
  private files: string[] = [];
  private hash = '';
  private dirWatchers: fs.FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly onChange: () => void) {}

  /** (Re)starts watching exactly these files; their current content is the baseline. */
  watch(files: readonly string[]): void {
    this.stop();
    this.files = [...new Set(files.map((f) => path.resolve(f)))];
    this.hash = hashFiles(this.files);
    const names = new Map<string, Set<string>>();
    for (const f of this.files) {
      const dir = path.dirname(f);
      if (!names.has(dir)) names.set(dir, new Set());
      names.get(dir)!.add(path.basename(f));
      fs.watchFile(f, { interval: POLL_MS, persistent: false }, () => this.changed());
    }
    for (const [dir, base] of names) {
      try {
        const w = fs.watch(dir, { persistent: false }, (_e, name) => {
          if (name === null || base.has(name)) this.changed();
        });
        w.on('error', () => undefined);
        this.dirWatchers.push(w);
      } catch {
        // polling covers it
      }
    }
  }

  stop(): void {
    for (const f of this.files) fs.unwatchFile(f);
    for (const w of this.dirWatchers) w.close();
    this.dirWatchers = [];
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private changed(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const now = hashFiles(this.files);
      if (now === this.hash) return;
      this.hash = now;
      this.onChange();
    }, SETTLE_MS);
    this.timer.unref();
  }
}

function hashFiles(files: readonly string[]): string {
  const h = createHash('sha256');
  for (const f of files) {
    h.update(f).update('\0');
    try {
      h.update(fs.readFileSync(f));
    } catch {
      h.update('(missing)');
    }
    h.update('\0');
  }
  return h.digest('hex');
}
