/**
 * For tests of configuration errors: `fulcrum check` on a config a test
 * writes must fail (exit 1) with a diagnostic at FILE:LINE:COL naming the
 * problem, as nginx -t would report it.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runFulcrum } from './fulcrum.js';

/**
 * Writes `text` to a file named after `name` in `dir`, runs `fulcrum check`
 * on it and asserts that it fails with `message`, at `line` when given.
 */
export async function expectConfigError(dir: string, name: string, text: string, expected: { line?: number; message: RegExp }): Promise<void> {
  const file = join(dir, `${name.replace(/\W+/g, '-')}.conf`);
  writeFileSync(file, text);
  const r = await runFulcrum(['check', '--config', file]);
  assert.equal(r.code, 1, r.stderr);
  const escaped = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  assert.match(r.stderr, new RegExp(`${escaped}:${expected.line ?? '\\d+'}:\\d+: `), r.stderr);
  assert.match(r.stderr, expected.message);
}
