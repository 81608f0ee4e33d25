/**
 * fulcrum's command line:
 *
 *   fulcrum start --config FILE [--format nginx|yaml|json]
 *   fulcrum check --config FILE [--format ...]        (like `nginx -t`)
 *   fulcrum demo [--scale backend=3] [--port 8080]
 *   fulcrum --help | --version
 *
 * nginx's own flags work too: `fulcrum -t -c FILE`, `fulcrum -c FILE`,
 * `fulcrum -s reload`, `-g "directives;"`, `-T`, `-q`.
 */
import { parseArgs } from 'node:util';
import { VERSION } from '../version.js';
import { setCommandLineDirectives } from '../config/load.js';
import { runCheck } from './check.js';
import { runDemo } from './demo.js';
import { isControlSignal, runSignal } from './signal.js';
import { runStart } from './start.js';

const HELP = `fulcrum ${VERSION}: a load balancer and reverse proxy that reads nginx configurations

Usage:
  fulcrum start --config FILE [--format nginx|yaml|json]
      Run in the foreground; logs go to stderr as JSON lines.
      SIGHUP reloads the configuration, SIGTERM/SIGINT stop gracefully,
      SIGUSR1 reopens log files.
  fulcrum check --config FILE [--format nginx|yaml|json]
      Validate the configuration like \`nginx -t\`: every error is printed as
      FILE:LINE:COL: message, and the exit status is 1 if there is any.
  fulcrum demo [--scale backend=N] [--port PORT]
      The seed's topology with no setup: N demo backends (default 3),
      restarted when they die, behind fulcrum on 127.0.0.1:PORT (default 8080).

Options:
  -c, --config FILE   configuration file (.conf = nginx syntax, .yaml/.yml, .json)
      --format FMT    override the format detected from the file name
  -t                  with -c: same as \`check\`
  -T                  as -t, then print every configuration file read
  -q                  with -t/-T: print errors only
  -s SIGNAL           send SIGNAL to the running fulcrum (nginx's -s): reload,
                      reopen (log files), quit (graceful stop), stop; the pid
                      file is the one the configuration names (\`pid\`), else
                      /run/fulcrum.pid (root) or $TMPDIR/fulcrum-UID.pid
  -g DIRECTIVES       directives added to the main context, as nginx's -g
                      (e.g. -g "daemon off;"); kept across reloads
  -h, --help          show this help
  -v, --version       show the version
`;

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        format: { type: 'string' },
        scale: { type: 'string', multiple: true },
        port: { type: 'string' },
        test: { type: 'boolean', short: 't' },
        'test-dump': { type: 'boolean', short: 'T' },
        quiet: { type: 'boolean', short: 'q' },
        signal: { type: 'string', short: 's' },
        global: { type: 'string', short: 'g' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    process.stderr.write(`fulcrum: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.version === true) {
    process.stdout.write(`fulcrum ${VERSION}\n`);
    return 0;
  }
  const format = values.format;
  if (format !== undefined && format !== 'nginx' && format !== 'yaml' && format !== 'json') {
    process.stderr.write(`fulcrum: unknown --format "${format}" (nginx, yaml or json)\n`);
    return 2;
  }
  if (values.global !== undefined) setCommandLineDirectives(values.global);
  const testing = values.test === true || values['test-dump'] === true;
  if (values.signal !== undefined) {
    if (!isControlSignal(values.signal)) {
      process.stderr.write(`fulcrum: invalid option: "-s ${values.signal}" (stop, quit, reopen or reload)\n`);
      return 2;
    }
    return runSignal(values.signal, values.config, format);
  }
  const command = positionals[0] ?? (testing ? 'check' : values.config !== undefined ? 'start' : undefined);
  switch (command) {
    case 'start':
    case 'check': {
      if (values.config === undefined) {
        process.stderr.write(`fulcrum ${command}: --config FILE is required\n`);
        return 2;
      }
      return command === 'check' || testing
        ? runCheck(values.config, format, { quiet: values.quiet === true, dump: values['test-dump'] === true })
        : runStart(values.config, format);
    }
    case 'demo':
      return runDemo({ scale: values.scale ?? [], port: values.port });
    case undefined:
      process.stdout.write(HELP);
      return 0;
    default:
      process.stderr.write(`fulcrum: unknown command "${command}"\n\n${HELP}`);
      return 2;
  }
}
