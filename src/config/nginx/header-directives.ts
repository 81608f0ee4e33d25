/**
 * Argument parsing of nginx's `expires` (ngx_http_headers_expires), kept out
 * of translate.ts. Messages are nginx's.
 */
import { parseDuration } from '../units.js';

export type ExpiresModel = 'off' | { mode: 'access' | 'modified' | 'daily' | 'epoch' | 'max'; seconds: number };

/** `expires [modified] time | @time-of-day | epoch | max | off`. */
export function parseExpires(args: readonly string[]): { value: ExpiresModel } | { error: string } {
  if (args.length === 1) {
    if (args[0] === 'epoch') return { value: { mode: 'epoch', seconds: 0 } };
    if (args[0] === 'max') return { value: { mode: 'max', seconds: 0 } };
    if (args[0] === 'off') return { value: 'off' };
  }
  let mode: 'access' | 'modified' | 'daily' = 'access';
  let text = args[0]!;
  if (args.length === 2) {
    if (args[0] !== 'modified') return { error: `invalid value "${args[0]}"` };
    mode = 'modified';
    text = args[1]!;
  }
  let sign = 1;
  if (text.startsWith('@')) {
    if (mode === 'modified') return { error: 'daily time cannot be used with "modified" parameter' };
    mode = 'daily';
    text = text.slice(1);
  } else if (text.startsWith('-')) {
    sign = -1;
    text = text.slice(1);
  }
  // nginx parses seconds here: "ms" is not a unit of this directive.
  const ms = /ms/.test(text) ? undefined : parseDuration(text);
  if (ms === undefined) return { error: `invalid value "${args[args.length - 1]}"` };
  const seconds = Math.floor(ms / 1000);
  if (mode === 'daily' && seconds > 24 * 60 * 60) return { error: 'daily time value must be less than 24 hours' };
  return { value: { mode, seconds: sign * seconds } };
}
