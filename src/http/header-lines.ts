/**
 * The header fields of one message head, kept as positions in its text.
 *
 * A proxy passes most fields on untouched and acts on a handful (framing,
 * Host, Connection). So instead of a name, a lowercase name and a value
 * string per field, a parsed head records where each line starts, where its
 * colon is and where it ends (before CRLF); the relay copies runs of lines
 * as received, and a field is sliced only when something asks for it. This
 * was ~45 % of the proxy's per-request garbage (docs/benchmarks.md).
 */
import { equalsLowercase, sliceTrimmingOws } from './syntax.js';

export class HeaderLines {
  /** The head text the positions point into. */
  text = '';
  /** How many header lines there are. */
  count = 0;
  /** Reused from head to head: entries past `count` are stale. */
  readonly starts: number[] = [];
  readonly colons: number[] = [];
  readonly ends: number[] = [];

  /** Forgets the lines (the arrays keep their capacity for the next head). */
  protected clearLines(): void {
    this.text = '';
    this.count = 0;
  }

  /** Records a header line of `text`. */
  addLine(start: number, colon: number, end: number): void {
    const i = this.count++;
    this.starts[i] = start;
    this.colons[i] = colon;
    this.ends[i] = end;
  }

  /**
   * Sets the fields from (name, value) pairs, for messages that arrive without
   * an HTTP/1 head to point into (HTTP/2): they are written out as lines.
   */
  setFields(fields: ReadonlyArray<readonly [string, string]>): void {
    let text = '';
    this.count = 0;
    for (const [name, value] of fields) {
      const start = text.length + 2;
      text += '\r\n' + name + ': ' + value;
      this.addLine(start, start + name.length, text.length);
    }
    this.text = text;
  }

  /** Lines `from` to `to` (exclusive) as received, each ending in CRLF: how a relay passes on a run of kept lines. */
  linesText(from: number, to: number): string {
    return this.text.slice(this.starts[from]!, this.ends[to - 1]!) + '\r\n';
  }

  /** Line `i`'s field name as received. */
  name(i: number): string {
    return this.text.slice(this.starts[i]!, this.colons[i]!);
  }

  /** Line `i`'s field value without surrounding whitespace. */
  value(i: number): string {
    return sliceTrimmingOws(this.text, this.colons[i]! + 1, this.ends[i]!);
  }

  /** Whether line `i`'s field name is `lowerName`, compared without case. */
  nameIs(i: number, lowerName: string): boolean {
    return equalsLowercase(this.text, this.starts[i]!, this.colons[i]!, lowerName);
  }

  /** The value of the first field named `lowerName` (lowercase), if any. */
  header(lowerName: string): string | undefined {
    for (let i = 0; i < this.count; i++) if (this.nameIs(i, lowerName)) return this.value(i);
    return undefined;
  }

  /** All values of a field joined by ', ' (how nginx >= 1.23 joins repeated fields), or undefined. */
  headerJoined(lowerName: string): string | undefined {
    let out: string | undefined;
    for (let i = 0; i < this.count; i++) {
      if (this.nameIs(i, lowerName)) out = out === undefined ? this.value(i) : out + ', ' + this.value(i);
    }
    return out;
  }

  /** Every field name as received, in order (made on demand; the relay does not need them). */
  get names(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.name(i));
    return out;
  }

  /** Their lowercase forms. */
  get lower(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.name(i).toLowerCase());
    return out;
  }

  /** Their values, OWS trimmed. */
  get values(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.value(i));
    return out;
  }
}
