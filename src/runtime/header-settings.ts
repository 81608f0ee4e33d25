/**
 * Inheritance of `charset` and `charset_types` (each inherited on its own,
 * as nginx merges them), compiled to what header-filters.ts reads.
 */
import type { CharsetRuntime } from '../proxy/header-filters.js';
import type { EffectiveSettings } from './table.js';

/** nginx's default charset_types. */
export const DEFAULT_CHARSET_TYPES: ReadonlySet<string> = new Set(['text/html', 'text/xml', 'text/plain', 'text/vnd.wap.wml', 'application/javascript', 'application/rss+xml']);

/** undefined for `charset_types *`. */
export function charsetTypes(types: readonly string[]): ReadonlySet<string> | undefined {
  return types.includes('*') ? undefined : new Set(types.map((t) => t.toLowerCase()));
}

/** The parent's object itself when the level sets neither; undefined when the charset is off. */
export function charsetRuntime(parent: EffectiveSettings, charset: string | undefined, types: readonly string[] | undefined): CharsetRuntime | undefined {
  if (charset === undefined && types === undefined) return parent.charset;
  const name = charset ?? parent.charset?.charset;
  if (name === undefined || name.toLowerCase() === 'off') return undefined;
  return { charset: name, types: types === undefined ? parent.charsetTypes : charsetTypes(types) };
}
