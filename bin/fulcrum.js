#!/usr/bin/env -S node --max-semi-space-size=4 --min-semi-space-size=4
// fulcrum's command line entry. The TypeScript sources are compiled to dist/
// by `npm ci` (the `prepare` script) or `npm run build`.
import { existsSync } from 'node:fs';

// The shebang gives V8 a small young generation of a fixed size: two 4 MiB
// semi-spaces. A proxy's per-request garbage dies young, and V8's default
// (growing to 16 MiB per semi-space) costs ~20 MiB of RSS for no measurable
// speed. The size is fixed, not left to grow from 1 MiB, because of new
// connections: a connection's objects, closed within ~5 ms, still survived
// two scavenges at 1-2 MiB (something keeps them a little past their close;
// not found), so every one was promoted and collected by full collections.
// `wrk -c50 -H "Connection: close"`: 120-190 MB promoted and ~20 full
// collections in 8 s with up to 2 MiB, 1 MB and none with 4 MiB; GC pauses
// 430-560 -> 44-54 ms, bench newconn 74.6 -> 46.7 µs of CPU per request, RSS
// after a c200 run +3 MiB (docs/benchmarks.md). V8 reads these only at start, so
// `node bin/fulcrum.js` without them works the same with a larger heap.
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';

// Connections that live a few milliseconds survive the young generation, and
// at 200 concurrent requests so do some requests' objects, so the old
// generation fills with dead objects; V8's default lets it grow to ~4x the
// live heap before a full collection (~95 MiB RSS at 10k new connections/s).
// Growing by at most 1.5x keeps RSS after a c200 run near 75 MiB instead of
// 78 (2x) for no measurable CPU (full collections of a ~12 MiB live heap
// take ~5 ms; docs/benchmarks.md). V8 reads this at every collection, so
// setting it now works.
setFlagsFromString('--heap-growing-percent=50');

// A scavenge runs on the main thread alone. V8 would split it into tasks for
// its helper threads, but a proxy runs one worker per core (worker_processes
// auto), so those threads only take turns with the main thread on its own
// core, and the coordination is pure cost: pauses 0.16 against 0.22 ms at
// the median, 20 % less GC time (docs/benchmarks.md).
setFlagsFromString('--no-parallel-scavenge');

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('fulcrum: not built yet: run `npm run build` (or `npm ci`) first\n');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
