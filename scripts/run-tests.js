#!/usr/bin/env node
// Runs the compiled test files with Node's own test runner.
// Usage: node scripts/run-tests.js [unit|integration|reliability|soak ...]
// With no argument it runs every suite except the soak tests (npm run test:soak).
//
// Bounded in time, whatever a test does: a test that runs longer than
// TEST_TIMEOUT_MS fails, and the whole run is killed, process group and all,
// after RUN_TIMEOUT_MS with a message naming the limit (a test file whose
// event loop stays alive after its tests end, e.g. a stray child process still
// holding its pipes, would otherwise hang the run).
//
// Not --test-force-exit: with more than one file at a time it silently drops
// verdicts of tests that ran (nodejs/node#64833; seen here as a run reporting
// 689 of 696 tests, exit 0), so a failure could go unreported.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';

const TEST_TIMEOUT_MS = 5 * 60_000;
const RUN_TIMEOUT_MS = 30 * 60_000;

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
const args = ['--test', '--test-reporter=spec', '--test-concurrency=2', `--test-timeout=${TEST_TIMEOUT_MS}`];
args.push(...files);

// Its own process group, so the watchdog can take every descendant down with it.
const runner = spawn(process.execPath, args, { stdio: 'inherit', detached: true });
const killGroup = (signal) => {
  try { process.kill(-runner.pid, signal); } catch { /* already gone */ }
};
const watchdog = setTimeout(() => {
  console.error(`\nrun-tests: the test run exceeded ${RUN_TIMEOUT_MS / 60_000} minutes; killing it`);
  killGroup('SIGKILL');
}, RUN_TIMEOUT_MS);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => { killGroup(signal); setTimeout(() => killGroup('SIGKILL'), 5_000).unref(); });
}
runner.on('exit', (code, signal) => {
  clearTimeout(watchdog);
  // Nothing a test started may outlive the run.
  killGroup('SIGKILL');
  process.exit(signal !== null ? 1 : (code ?? 1));
});
