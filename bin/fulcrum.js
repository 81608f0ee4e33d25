#!/usr/bin/env -S node --max-semi-space-size=2
// fulcrum's command line entry. The TypeScript sources are compiled to dist/
// by `npm ci` (the `prepare` script) or `npm run build`.
import { existsSync } from 'node:fs';

// The shebang gives V8 a small young generation (--max-semi-space-size=2):
// a proxy's per-request garbage dies young, and V8's default (up to 16 MiB
// per semi-space) costs ~20 MiB of RSS for no measurable speed
// (docs/benchmarks.md). V8 reads it only at start, so `node bin/fulcrum.js`
// without the flag works the same with a larger heap.
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('fulcrum: not built yet: run `npm run build` (or `npm ci`) first\n');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
