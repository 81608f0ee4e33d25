import { equalsLowercase } from './syntax.js';

/**
 * A fixed set of short strings (lowercase header names, methods) for the
 * lookups made on every request: bucketed by length, then compared.
 *
 * A JS Set hashes the string it is asked about, and header names and
 * methods are fresh substrings of each head, so every lookup computed a hash
 * (String::ComputeAndSetRawHash, 1.2 % of the proxy's CPU at 60,000
 * requests/s). Most names are ruled out by their length alone; the rest cost
 * a comparison or two with strings of the same length.
 */
export class NameSet {
  private readonly byLength: string[][] = [];
  readonly size: number;

  constructor(names: Iterable<string>) {
    let size = 0;
    for (const name of names) {
      while (this.byLength.length <= name.length) this.byLength.push([]);
      const bucket = this.byLength[name.length]!;
      if (!bucket.includes(name)) {
        bucket.push(name);
        size++;
      }
    }
    this.size = size;
  }

  has(name: string): boolean {
    if (name.length >= this.byLength.length) return false;
    const bucket = this.byLength[name.length]!;
    for (let i = 0; i < bucket.length; i++) if (bucket[i] === name) return true;
    return false;
  }

  /**
   * Whether `text.slice(start, end)`, compared without ASCII case, is in the
   * set (of lowercase names): no substring and no lowercase copy is made.
   */
  hasIgnoringCase(text: string, start: number, end: number): boolean {
    const length = end - start;
    if (length >= this.byLength.length) return false;
    const bucket = this.byLength[length]!;
    for (let i = 0; i < bucket.length; i++) if (equalsLowercase(text, start, end, bucket[i]!)) return true;
    return false;
  }
}
