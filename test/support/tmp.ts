/** Temporary directories that are removed when the test process exits. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const created = new Set<string>();
let cleanupRegistered = false;

/** Creates a fresh directory under the system temp dir (e.g. `/tmp/fulcrum-tls-AbC123`) and returns its path. */
export function tempDir(prefix = 'fulcrum-test-'): string {
  if (!cleanupRegistered) {
    cleanupRegistered = true;
    process.on('exit', removeAll);
  }
  const dir = mkdtempSync(join(tmpdir(), prefix));
  created.add(dir);
  return dir;
}

function removeAll(): void {
  for (const dir of created) rmSync(dir, { recursive: true, force: true });
  created.clear();
}
