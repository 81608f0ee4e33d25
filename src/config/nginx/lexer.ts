/**
 * The nginx configuration lexer: a port of `ngx_conf_read_token()` from
 * nginx's `src/core/ngx_conf_file.c`, state flag for state flag, so fulcrum
 * splits a file into words exactly where nginx does.
 *
 * Like nginx, it does not produce single tokens but whole statements: the words
 * of one directive plus what ended it (`;`, `{`, `}` or the end of the file).
 * Unlike nginx, which stops at the first error, it reports an error and
 * recovers, so that one pass finds every syntax error in a file.
 */

import type { ConfigDiagnostic, SourceLocation } from '../errors.js';

/** One word of a directive: its name or one of its arguments. */
export interface Word {
  /** The value with quotes removed and escapes applied. */
  value: string;
  /** Whether the word was written in quotes ("" is an empty word only when quoted). */
  quoted: boolean;
  /** Where the word starts (its opening quote, if quoted). */
  loc: SourceLocation;
}

/**
 * What ended a statement, mirroring the return codes of `ngx_conf_read_token()`:
 * `semicolon` = NGX_OK, `block-start` = NGX_CONF_BLOCK_START,
 * `block-end` = NGX_CONF_BLOCK_DONE, `eof` = NGX_CONF_FILE_DONE.
 */
export type StatementEnd = 'semicolon' | 'block-start' | 'block-end' | 'eof';

export interface Statement {
  /** The directive name and its arguments; empty for `block-end` and `eof`. */
  words: Word[];
  end: StatementEnd;
  /** Where the terminating character is (or the end of the file). */
  endLoc: SourceLocation;
}

/** nginx's whitespace: exactly these four characters, nothing Unicode. */
function isSpace(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n';
}

/**
 * The escapes nginx applies when it copies a word out of its buffer. Any other
 * backslash pair is kept as written (so regexes such as `\d` survive), and this
 * applies to unquoted words as well as quoted ones.
 */
const ESCAPES: ReadonlyMap<string, string> = new Map([
  ['"', '"'],
  ["'", "'"],
  ['\\', '\\'],
  ['t', '\t'],
  ['r', '\r'],
  ['n', '\n'],
]);

export function unescapeWord(raw: string): string {
  if (!raw.includes('\\')) return raw;
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const ch = raw.charAt(i);
    const replacement = ch === '\\' ? ESCAPES.get(raw.charAt(i + 1)) : undefined;
    if (replacement === undefined) {
      out += ch;
    } else {
      out += replacement;
      i++;
    }
  }
  return out;
}

/**
 * The lexer state that lives for one statement; the flags have the meaning of
 * the same-named locals in `ngx_conf_read_token()`.
 */
interface ScanState {
  words: Word[];
  /** Between words: the next non-space character starts a word (or is `;{}#`). */
  lastSpace: boolean;
  /** Just after a closing quote: only whitespace, `;`, `{` or `)` may follow. */
  needSpace: boolean;
  /** Inside a `#` comment, until the end of the line. */
  comment: boolean;
  /** The previous character was a backslash: this one is taken literally. */
  escaped: boolean;
  /** The previous character was `$`: a `{` right after it belongs to the word. */
  variable: boolean;
  /** The quote character the current word is inside, if any. */
  quote: '"' | "'" | undefined;
  /** Index where the current word's value starts (after its opening quote). */
  valueStart: number;
  wordLoc: SourceLocation;
  wordQuoted: boolean;
}

export class NginxLexer {
  private pos = 0;
  private line = 1;
  private column = 1;
  /** Position of the character being examined, so a location is built only when needed. */
  private charPos = 0;
  private charLine = 1;
  private charColumn = 1;
  private eofErrorReported = false;

  constructor(
    private readonly text: string,
    private readonly file: string,
    private readonly report: (diagnostic: ConfigDiagnostic) => void,
  ) {}

  /**
   * True once an end-of-file error was reported for this file, so the parser
   * does not add a second one for the blocks left open (nginx stops at the first).
   */
  get reportedEndOfFile(): boolean {
    return this.eofErrorReported;
  }

  /** Reads the next statement. Always consumes input or returns `eof`, so callers cannot loop forever. */
  readStatement(): Statement {
    const s = this.newState();
    for (;;) {
      if (this.pos >= this.text.length) return this.endOfFile(s);
      const ch = this.advance();
      const done = this.step(s, ch);
      if (done) return done;
    }
  }

  private newState(): ScanState {
    return {
      words: [],
      lastSpace: true,
      needSpace: false,
      comment: false,
      escaped: false,
      variable: false,
      quote: undefined,
      valueStart: this.pos,
      wordLoc: this.here(),
      wordQuoted: false,
    };
  }

  /** Consumes one character, remembering where it was. */
  private advance(): string {
    this.charPos = this.pos;
    this.charLine = this.line;
    this.charColumn = this.column;
    const ch = this.text.charAt(this.pos++);
    if (ch === '\n') {
      this.line++;
      this.column = 1;
    } else if (!this.isSecondHalfOfSurrogatePair(this.pos - 1)) {
      // Columns count characters, so an astral character (two UTF-16 units) is one column.
      this.column++;
    }
    return ch;
  }

  private isSecondHalfOfSurrogatePair(index: number): boolean {
    const unit = this.text.charCodeAt(index);
    const before = index > 0 ? this.text.charCodeAt(index - 1) : 0;
    return unit >= 0xdc00 && unit <= 0xdfff && before >= 0xd800 && before <= 0xdbff;
  }

  /** Un-consumes the current character, so the next statement starts with it. */
  private unread(): void {
    this.pos = this.charPos;
    this.line = this.charLine;
    this.column = this.charColumn;
  }

  private here(): SourceLocation {
    return { file: this.file, line: this.line, column: this.column };
  }

  private charLoc(): SourceLocation {
    return { file: this.file, line: this.charLine, column: this.charColumn };
  }

  private error(message: string, loc: SourceLocation, s: ScanState): void {
    const directive = s.words[0]?.value;
    this.report(directive === undefined ? { loc, message } : { loc, message, directive });
  }

  private finish(s: ScanState, end: StatementEnd, endLoc: SourceLocation = this.charLoc()): Statement {
    return { words: s.words, end, endLoc };
  }

  /** The body of nginx's read loop for one character; returns a statement when one ends. */
  private step(s: ScanState, ch: string): Statement | undefined {
    if (ch === '\n') s.comment = false;
    if (s.comment) return undefined;
    if (s.escaped) {
      s.escaped = false;
      return undefined;
    }
    if (s.needSpace) return this.afterClosingQuote(s, ch);
    if (s.lastSpace) return this.betweenWords(s, ch);
    return this.insideWord(s, ch);
  }

  private afterClosingQuote(s: ScanState, ch: string): Statement | undefined {
    s.needSpace = false;
    s.lastSpace = true;
    // nginx lets `)` follow a quote for `if ($a = "b")`, and then starts a new word with it.
    // `}` is reported by betweenWords(), since it also ends the statement.
    if (!isSpace(ch) && !';{})'.includes(ch)) {
      // nginx stops here; we carry on as if a space separated the two words.
      this.error(`unexpected "${ch}"`, this.charLoc(), s);
    }
    return this.betweenWords(s, ch);
  }

  private betweenWords(s: ScanState, ch: string): Statement | undefined {
    if (isSpace(ch)) return undefined;
    switch (ch) {
      case ';':
        if (s.words.length > 0) return this.finish(s, 'semicolon');
        this.error('unexpected ";"', this.charLoc(), s);
        return undefined; // recover: an empty statement is simply skipped
      case '{':
        // Without a name this is an error, but the block is still returned so the
        // parser can skip it as a whole and its "}" does not unbalance the rest.
        if (s.words.length === 0) this.error('unexpected "{"', this.charLoc(), s);
        return this.finish(s, 'block-start');
      case '}':
        if (s.words.length === 0) return this.finish(s, 'block-end');
        // Most likely a missing ";": keep the directive and let the "}" close the block.
        this.error('unexpected "}"', this.charLoc(), s);
        this.unread();
        return this.finish(s, 'semicolon');
      case '#':
        s.comment = true;
        return undefined;
    }
    this.startWord(s, ch);
    return undefined;
  }

  private startWord(s: ScanState, ch: string): void {
    s.lastSpace = false;
    s.wordLoc = this.charLoc();
    s.valueStart = this.charPos;
    s.escaped = ch === '\\';
    s.variable = ch === '$';
    s.quote = ch === '"' || ch === "'" ? ch : undefined;
    s.wordQuoted = s.quote !== undefined;
    // A quoted word's value starts after its quote; its location stays on the quote.
    if (s.wordQuoted) s.valueStart++;
  }

  private insideWord(s: ScanState, ch: string): Statement | undefined {
    // `${name}`: the brace is variable syntax, not a block. No such care is
    // needed for the closing brace: `}` never ends a word in nginx.
    if (ch === '{' && s.variable) return undefined;
    s.variable = false;
    if (ch === '\\') {
      s.escaped = true;
      return undefined;
    }
    if (ch === '$') {
      s.variable = true;
      return undefined;
    }
    if (s.quote !== undefined) {
      if (ch === s.quote) {
        this.pushWord(s, this.charPos);
        s.quote = undefined;
        s.needSpace = true;
      }
      return undefined;
    }
    if (!isSpace(ch) && ch !== ';' && ch !== '{') return undefined;
    this.pushWord(s, this.charPos);
    s.lastSpace = true;
    if (ch === ';') return this.finish(s, 'semicolon');
    if (ch === '{') return this.finish(s, 'block-start');
    return undefined;
  }

  private pushWord(s: ScanState, valueEnd: number): void {
    const raw = this.text.slice(s.valueStart, valueEnd);
    s.words.push({ value: unescapeWord(raw), quoted: s.wordQuoted, loc: s.wordLoc });
  }

  private endOfFile(s: ScanState): Statement {
    const eofLoc = this.here();
    if (s.words.length === 0 && s.lastSpace) return this.finish(s, 'eof', eofLoc);

    const wordInProgress = !s.lastSpace && !s.needSpace;
    if (wordInProgress && s.quote !== undefined) {
      // nginx says "unexpected end of file" here; pointing at the quote that was
      // never closed is more useful, since it swallowed everything after it.
      this.error(`unbalanced quotes: missing terminating ${s.quote} character`, s.wordLoc, s);
    } else {
      this.error('unexpected end of file, expecting ";" or "}"', eofLoc, s);
      if (wordInProgress) this.pushWord(s, this.text.length);
    }
    this.eofErrorReported = true;
    // Recover: keep what was read as a directive; the next call returns `eof`.
    return this.finish(s, s.words.length > 0 ? 'semicolon' : 'eof', eofLoc);
  }
}
