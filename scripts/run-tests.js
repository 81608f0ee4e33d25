#!/usr/bin/env node
// Runs the compiled test files with Node's own test runner.
// Usage: node scripts/run-tests.js [unit|integration|reliability|soak ...]
// With no argument it runs every suite except the soak tests (npm run test:soak).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('../dist/test/', import.meta.url).pathname;
const suites = process.argv.slice(2);
const wanted = suites.length > 0 ? suites : ['unit', 'golden', 'integration', 'reliability'];

function collect(dir) {
  let out = [];
  let entries;
  try { entries = readdirSync(dir); } catch { return out; }
  for (const name of entries.sort()) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out = out.concat(collect(full));
    else if (name.endsWith('.test.js')) out.push(full);
  }
  return out;
}

const files = wanted.flatMap((s) => collect(join(root, s)));
if (files.length === 0) {
  console.error('no test files found under dist/test for', wanted.join(', '));
  process.exit(1);
}
const args = ['--test', '--test-reporter=spec', '--test-concurrency=2', ...files];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
