/**
 * Keys for the routing tables' Maps. Names and paths from a configuration
 * are usually slices of a larger string (the file's text, a directive's
 * argument), and V8 keeps a slice as a view of its parent: looking one up in
 * a Map of more than a few entries then costs ~5x as much (50-90 ns against
 * 10-15 ns per lookup, bench/routing.ts). A property key is internalized:
 * a flat copy with its hash computed, which compares like any other string.
 */
export function mapKey(text: string): string {
  return Object.keys({ [text]: 0 })[0]!;
}
