/**
 * Entry point of a worker process forked by the supervisor.
 */
import { parseArgs } from 'node:util';
import type { ConfigFormat } from '../config/load.js';
import { runWorker } from './worker.js';

const { values } = parseArgs({ options: { config: { type: 'string' }, format: { type: 'string' } } });
await runWorker(values.config!, values.format as ConfigFormat | undefined);
