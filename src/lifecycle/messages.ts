/**
 * Messages between the supervisor (cluster primary) and its workers.
 */
import type { PassiveOp } from '../health/passive.js';

export type ToWorker =
  | { type: 'reload' }
  | { type: 'shutdown' }
  | { type: 'reopen-logs' }
  | { type: 'passive'; op: PassiveOp };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'start-failed'; error: string }
  | { type: 'reloaded' }
  | { type: 'reload-failed'; error: string }
  | { type: 'passive'; op: PassiveOp };

export function isFromWorker(m: unknown): m is FromWorker {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}

export const isToWorker = isFromWorker as (m: unknown) => m is ToWorker;
