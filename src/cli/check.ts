/**
 * `fulcrum check`: like `nginx -t`. Loads and compiles the configuration
 * without binding sockets or opening logs, prints warnings and errors as
 * FILE:LINE:COL: message, and exits 1 when there is any error.
 */
import * as fs from 'node:fs';
import { ConfigError, formatDiagnostic } from '../config/errors.js';
import { loadConfig, type ConfigFormat } from '../config/load.js';
import { LogSinks } from '../log/access-log.js';
import { compile } from '../runtime/compile.js';
import { ServerRegistry } from '../upstream/group.js';

export interface CheckOptions {
  /** nginx's -q: only errors are printed. */
  quiet?: boolean;
  /** nginx's -T: after a successful test, every file read is printed to stdout. */
  dump?: boolean;
}

export function runCheck(file: string, format: ConfigFormat | undefined, options: CheckOptions = {}): number {
  try {
    const loaded = loadConfig(file, { format });
    const { warnings } = compile(loaded, { registry: new ServerRegistry(), logSinks: new LogSinks(), generation: 0, dryRun: true });
    if (options.quiet !== true) {
      for (const w of warnings) process.stderr.write(`warning: ${formatDiagnostic(w)}\n`);
      process.stderr.write(`fulcrum: the configuration file ${file} syntax is ok\nfulcrum: configuration file ${file} test is successful\n`);
    }
    if (options.dump === true) {
      for (const f of loaded.files) process.stdout.write(`# configuration file ${f}:\n${fs.readFileSync(f, 'utf8')}\n`);
    }
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const d of err.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
    process.stderr.write(`fulcrum: configuration file ${file} test failed (${err.diagnostics.length} error${err.diagnostics.length === 1 ? '' : 's'})\n`);
    return 1;
  }
}
