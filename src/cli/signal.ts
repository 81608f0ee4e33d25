/**
 * `fulcrum -s reload|reopen|quit|stop [-c FILE]`: nginx's `nginx -s SIGNAL`.
 * The configuration names the pid file (`pid`, or fulcrum's default), so it
 * is read first, as nginx does; without -c the default pid file is used.
 */
import { ConfigError, formatDiagnostic } from '../config/errors.js';
import { loadConfig, type ConfigFormat } from '../config/load.js';
import { CONTROL_SIGNALS, defaultPidFile, pidFileOf, signalPidFile, type ControlSignal } from '../lifecycle/pid-file.js';

export function isControlSignal(name: string): name is ControlSignal {
  return Object.hasOwn(CONTROL_SIGNALS, name);
}

export function runSignal(signal: ControlSignal, configPath: string | undefined, format: ConfigFormat | undefined): number {
  let pidFile = defaultPidFile();
  if (configPath !== undefined) {
    try {
      pidFile = pidFileOf(loadConfig(configPath, { format }));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      for (const d of err.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
      process.stderr.write(`fulcrum: configuration file ${configPath} is invalid: no signal sent\n`);
      return 1;
    }
  }
  try {
    signalPidFile(pidFile, signal);
    return 0;
  } catch (err) {
    process.stderr.write(`fulcrum: [error] ${(err as Error).message}\n`);
    return 1;
  }
}
