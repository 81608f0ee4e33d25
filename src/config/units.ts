/**
 * nginx's value syntaxes for time and size, shared by both config front ends.
 * See https://nginx.org/en/docs/syntax.html.
 */

const TIME_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
  M: 2_592_000_000,
  y: 31_536_000_000,
};

/**
 * Parses an nginx time ("300", "30s", "1h 30m", "1h30m", "500ms") into
 * milliseconds. A bare number means seconds, as in nginx. Returns undefined
 * when the text is not a valid time.
 */
export function parseDuration(text: string | number): number | undefined {
  if (typeof text === 'number') return Number.isFinite(text) && text >= 0 ? Math.round(text * 1000) : undefined;
  const s = text.trim();
  if (/^[0-9]+$/.test(s)) return +s * 1000;
  const re = /([0-9]+)(ms|s|m|h|d|w|M|y)\s*/gy;
  let total = 0;
  let consumed = 0;
  let m: RegExpExecArray | null;
  const seen = new Set<string>();
  while ((m = re.exec(s)) !== null) {
    const unit = m[2]!;
    if (seen.has(unit)) return undefined;
    seen.add(unit);
    total += +m[1]! * TIME_UNITS[unit]!;
    consumed = re.lastIndex;
  }
  return consumed === s.length && consumed > 0 ? total : undefined;
}

/** Parses an nginx size ("1024", "8k", "10m", "1g") into bytes; undefined when invalid. */
export function parseSize(text: string | number): number | undefined {
  if (typeof text === 'number') return Number.isInteger(text) && text >= 0 ? text : undefined;
  const m = /^([0-9]+)([kKmMgG]?)$/.exec(text.trim());
  if (m === null) return undefined;
  const n = +m[1]!;
  switch (m[2]!.toLowerCase()) {
    case 'k':
      return n * 1024;
    case 'm':
      return n * 1024 * 1024;
    case 'g':
      return n * 1024 * 1024 * 1024;
    default:
      return n;
  }
}

/** Formats milliseconds back into nginx time syntax (for messages and the admin API). */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
