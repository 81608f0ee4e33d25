/**
 * Objects the request path reads keep one V8 hidden class for their whole
 * life. When a field first written on a rare event (the end of the first
 * fail_timeout window, a first failure, a first latency sample) changes from
 * a small integer to a double, every object of the class gets a new hidden
 * class and V8 throws away the optimized request path, then recompiles it on
 * the proxy's core in the middle of live traffic (src/runtime/double-zero.ts).
 * V8's own check (%HaveSameMap) runs in a child process started with
 * --allow-natives-syntax.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

const moduleUrl = (path: string): string => JSON.stringify(new URL(path, import.meta.url).href);

function runWithNatives(script: string): unknown {
  const out = execFileSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script], {
    encoding: 'utf8',
  });
  return JSON.parse(out);
}

test('a ServerState keeps its hidden class through selection, failure, recovery, latency samples and counters past 2^31', () => {
  const result = runWithNatives(`
    import { ServerState } from ${moduleUrl('../../src/upstream/server-state.js')};
    import { noteSelected, noteFailure, noteSuccess } from ${moduleUrl('../../src/health/passive.js')};
    import { observeLatency } from ${moduleUrl('../../src/balancer/peak-ewma.js')};
    const make = () => {
      const s = new ServerState('backend', 'b1:8080', { host: '127.0.0.1', port: 8080 });
      s.maxFails = 3;
      s.failTimeoutMs = 10000;
      return s;
    };
    const fresh = make();
    const used = make();
    // What traffic does to a server over its first seconds, with the clock's
    // fractional milliseconds (performance.now()).
    noteSelected(used, 0.75);
    noteSuccess(used, 1.5);
    noteSelected(used, 10003.25); // the first fail_timeout window ends
    noteFailure(used, 10004.5, 'connect refused');
    noteSelected(used, 20010.125);
    noteSuccess(used, 20011.625);
    used.lastLatencyMs = 0.4375;
    used.latencyEwmaMs = 0.4375;
    used.headerLatency.observe(0.4375);
    observeLatency(used, 0.4375, 20012.25);
    used.removedAt = 30000.5;
    // Counters past the small-integer range (2^31), as on a server busy for a day.
    used.requests = 2 ** 31 + 1;
    used.responses[2] = 2 ** 31 + 1;
    used.failures = 2 ** 31 + 1;
    used.retries = 2 ** 31 + 1;
    process.stdout.write(JSON.stringify({
      usedKeepsClass: %HaveSameMap(fresh, used),
      freshNotDeprecated: %HaveSameMap(fresh, make()),
      histogramKeepsClass: %HaveSameMap(fresh.headerLatency, used.headerLatency),
      responseCountsKeepKind: %HaveSameMap(fresh.responses, used.responses),
      countersPrintAsZero: JSON.stringify([fresh.requests, fresh.responses]),
    }));
  `);
  assert.deepEqual(result, {
    usedKeepsClass: true,
    freshNotDeprecated: true,
    histogramKeepsClass: true,
    responseCountsKeepKind: true,
    countersPrintAsZero: '[0,[0,0,0,0,0,0]]',
  });
});
