/**
 * Entry point of a worker process forked by the supervisor.
 */
import { parseArgs } from 'node:util';
import { setCommandLineDirectives, type ConfigFormat } from '../config/load.js';
import { runWorker } from './worker.js';

const { values } = parseArgs({ options: { config: { type: 'string' }, format: { type: 'string' }, global: { type: 'string' } } });
setCommandLineDirectives(values.global);
await runWorker(values.config!, values.format as ConfigFormat | undefined);
