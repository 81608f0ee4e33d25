/**
 * nginx configuration syntax: text -> directive tree with exact source
 * positions, following `ngx_conf_parse()` and `ngx_conf_include()` from
 * nginx's `src/core/ngx_conf_file.c`. This layer knows no directive except
 * `include` (which nginx also handles while parsing); what directives mean, and
 * where they are allowed, is checked by the layers above.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ConfigDiagnostic, SourceLocation } from '../errors.js';
import { NginxLexer, type Statement, type Word } from './lexer.js';

export interface Directive {
  /** e.g. "proxy_pass"; case-sensitive, as in nginx. */
  name: string;
  /** Unescaped argument values (quotes removed, escapes applied). */
  args: string[];
  /** Per argument: was it written in quotes (nginx treats "" as an empty arg, variables still expand in quotes). */
  quoted: boolean[];
  /** Position of the directive name. */
  loc: SourceLocation;
  /** Position of each argument. */
  argLocs: SourceLocation[];
  /** Present when the directive has a { ... } block (even if empty). */
  block?: Directive[];
}

export interface ParseResult {
  directives: Directive[];
  diagnostics: ConfigDiagnostic[];
  /** Every file read, main first, each once. */
  files: string[];
}

export interface ParseOptions {
  /** Directory that relative `include` paths resolve against. nginx resolves them against the directory of the main config file (its conf prefix); default: dirname of the main file. */
  prefix?: string;
  /** Injected for tests; default fs.readFileSync(path, 'utf8'). */
  readFile?: (path: string) => string;
  /** Injected for tests; default: real glob expansion over the filesystem (sorted, like nginx's glob). */
  expandGlob?: (pattern: string) => string[];
}

/** Parses configuration text as if it were the main file `file`. */
export function parseNginxText(text: string, file: string, options: ParseOptions = {}): ParseResult {
  const parser = new ConfigParser(file, options);
  const directives = parser.parseFile(file, text);
  return parser.result(directives);
}

/** Reads and parses the main configuration file at `file`, following includes. */
export function parseNginxFile(file: string, options: ParseOptions = {}): ParseResult {
  const parser = new ConfigParser(file, options);
  const text = parser.read(file);
  const directives = text === undefined ? [] : parser.parseFile(file, text);
  return parser.result(directives);
}

/**
 * nginx has no limit but the number of open files; cycles are caught before
 * this, so only a symlink loop or an absurd configuration reaches it.
 */
const MAX_INCLUDE_DEPTH = 100;

class ConfigParser {
  private readonly diagnostics: ConfigDiagnostic[] = [];
  private readonly filesRead = new Set<string>();
  /** The files being parsed, outermost first: where a cycle would come from. */
  private readonly includeChain: { file: string; key: string }[] = [];
  private readonly prefix: string;
  private readonly readFile: (file: string) => string;
  private readonly expandGlob: (pattern: string) => string[];

  constructor(mainFile: string, options: ParseOptions) {
    this.prefix = options.prefix ?? path.dirname(mainFile);
    this.readFile = options.readFile ?? ((file) => fs.readFileSync(file, 'utf8'));
    this.expandGlob = options.expandGlob ?? expandGlobOnDisk;
  }

  result(directives: Directive[]): ParseResult {
    return { directives, diagnostics: this.diagnostics, files: [...this.filesRead] };
  }

  /**
   * Reads a file, reporting failure like nginx (`open() "x" failed (...)`) at
   * the include that asked for it, or with no location for the main file.
   */
  read(file: string, includeLoc?: SourceLocation): string | undefined {
    try {
      return this.readFile(file);
    } catch (error: unknown) {
      const message = fileErrorMessage(file, error);
      this.report(includeLoc ? { loc: includeLoc, message, directive: 'include' } : { loc: undefined, message });
      return undefined;
    }
  }

  parseFile(file: string, text: string): Directive[] {
    this.filesRead.add(file);
    this.includeChain.push({ file, key: path.resolve(file) });
    try {
      return this.parseStatements(new NginxLexer(text, file, (d) => this.report(d)));
    } finally {
      this.includeChain.pop();
    }
  }

  /**
   * Stops a recovered error from being reported twice at the same place (the
   * lexer reports a `}` that ends a statement early, then returns it as a
   * block end that may itself be unexpected).
   */
  private report(diagnostic: ConfigDiagnostic): void {
    const last = this.diagnostics[this.diagnostics.length - 1];
    if (last && last.message === diagnostic.message && sameLocation(last.loc, diagnostic.loc)) return;
    this.diagnostics.push(diagnostic);
  }

  /**
   * The loop of `ngx_conf_parse()` for one file. Blocks are tracked with an
   * explicit stack rather than recursion, so deep nesting cannot overflow.
   * A file is parsed on its own even when included inside a block: a block
   * cannot start in one file and end in another, as in nginx.
   */
  private parseStatements(lexer: NginxLexer): Directive[] {
    const topLevel: Directive[] = [];
    const openBlocks: Directive[][] = [topLevel];
    for (;;) {
      const statement = lexer.readStatement();
      const container = openBlocks[openBlocks.length - 1] ?? topLevel;
      switch (statement.end) {
        case 'eof':
          if (openBlocks.length > 1 && !lexer.reportedEndOfFile) {
            this.report({ loc: statement.endLoc, message: 'unexpected end of file, expecting "}"' });
          }
          return topLevel;
        case 'block-end':
          if (openBlocks.length > 1) openBlocks.pop();
          else this.report({ loc: statement.endLoc, message: 'unexpected "}"' });
          break;
        case 'block-start':
          openBlocks.push(this.openBlock(statement, container));
          break;
        case 'semicolon':
          this.addDirective(statement, container);
          break;
      }
    }
  }

  /** Returns the list the block's directives go into. */
  private openBlock(statement: Statement, container: Directive[]): Directive[] {
    const directive = toDirective(statement.words);
    // A block that cannot be kept (no name, already reported by the lexer, or on
    // "include") is still parsed, so that its "}" balances, and then dropped.
    if (!directive) return [];
    if (directive.name === 'include') {
      this.report({ loc: directive.loc, message: 'directive "include" is not terminated by ";"', directive: 'include' });
      return [];
    }
    directive.block = [];
    container.push(directive);
    return directive.block;
  }

  private addDirective(statement: Statement, container: Directive[]): void {
    const directive = toDirective(statement.words);
    if (!directive) return;
    if (directive.name !== 'include') {
      container.push(directive);
      return;
    }
    // A loop, not push(...spread): an included file may hold more directives than a call takes arguments.
    for (const included of this.include(directive)) container.push(included);
  }

  /** `ngx_conf_include()`: the included files' directives, in order, to splice in place of the include. */
  private include(directive: Directive): Directive[] {
    const [pattern] = directive.args;
    if (directive.args.length !== 1 || pattern === undefined) {
      this.report({ loc: directive.loc, message: 'invalid number of arguments in "include" directive', directive: 'include' });
      return [];
    }
    const fullPattern = path.isAbsolute(pattern) ? pattern : path.join(this.prefix, pattern);
    // Like nginx, only a path with glob characters is globbed; a glob that
    // matches nothing is not an error, but a plain path that is missing is.
    const files = hasGlobMagic(fullPattern) ? this.glob(fullPattern, directive.loc) : [fullPattern];
    const directives: Directive[] = [];
    for (const file of files) {
      for (const included of this.includeFile(file, directive.loc)) directives.push(included);
    }
    return directives;
  }

  private glob(pattern: string, loc: SourceLocation): string[] {
    try {
      return this.expandGlob(pattern);
    } catch (error: unknown) {
      this.report({ loc, message: `glob() "${pattern}" failed (${errorReason(error)})`, directive: 'include' });
      return [];
    }
  }

  private includeFile(file: string, loc: SourceLocation): Directive[] {
    const key = path.resolve(file);
    if (this.includeChain.some((entry) => entry.key === key)) {
      const chain = [...this.includeChain.map((entry) => entry.file), file].join(' -> ');
      this.report({ loc, message: `include cycle: ${chain}`, directive: 'include' });
      return [];
    }
    if (this.includeChain.length >= MAX_INCLUDE_DEPTH) {
      this.report({ loc, message: `too many nested includes (more than ${MAX_INCLUDE_DEPTH})`, directive: 'include' });
      return [];
    }
    const text = this.read(file, loc);
    return text === undefined ? [] : this.parseFile(file, text);
  }
}

function toDirective(words: Word[]): Directive | undefined {
  const [name, ...args] = words;
  if (name === undefined) return undefined;
  return {
    name: name.value,
    args: args.map((word) => word.value),
    quoted: args.map((word) => word.quoted),
    loc: name.loc,
    argLocs: args.map((word) => word.loc),
  };
}

function sameLocation(a: SourceLocation | undefined, b: SourceLocation | undefined): boolean {
  return a?.file === b?.file && a?.line === b?.line && a?.column === b?.column;
}

/** strerror() texts, so messages read like nginx's `open() "x" failed (2: No such file or directory)`. */
const ERRNO_TEXT: ReadonlyMap<string, string> = new Map([
  ['ENOENT', 'No such file or directory'],
  ['EACCES', 'Permission denied'],
  ['EISDIR', 'Is a directory'],
  ['ENOTDIR', 'Not a directory'],
  ['ELOOP', 'Too many levels of symbolic links'],
  ['EMFILE', 'Too many open files'],
  ['ENAMETOOLONG', 'File name too long'],
]);

function errorReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const text = code === undefined ? undefined : ERRNO_TEXT.get(code);
  if (text !== undefined) return text;
  return error instanceof Error ? error.message : String(error);
}

function fileErrorMessage(file: string, error: unknown): string {
  // Reading a directory fails in read(), not open(); say which, as nginx would.
  const syscall = (error as NodeJS.ErrnoException | undefined)?.syscall ?? 'open';
  return `${syscall}() "${file}" failed (${errorReason(error)})`;
}

// ---------------------------------------------------------------------------
// Glob expansion: what nginx gets from glob(3) with no flags. Wildcards work in
// any path segment; results are sorted byte-wise (the C locale nginx runs in);
// `*`, `?` and `[...]` do not match a leading dot, so hidden files are skipped.

/** nginx's test for "is this a glob": `strpbrk(path, "*?[")`. */
export function hasGlobMagic(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

/** Expands a glob pattern against the filesystem, sorted; no match gives []. */
export function expandGlobOnDisk(pattern: string): string[] {
  const segments = pattern.split('/').filter((segment) => segment !== '');
  let candidates = [path.isAbsolute(pattern) ? '/' : '.'];
  for (const segment of segments) {
    if (!hasGlobMagic(segment)) {
      candidates = candidates.map((dir) => path.join(dir, segment));
      continue;
    }
    const matches = globSegmentMatcher(segment);
    candidates = candidates.flatMap((dir) => listDirectory(dir).filter(matches).map((name) => path.join(dir, name)));
  }
  return candidates.filter((candidate) => fs.existsSync(candidate)).sort(compareByteWise);
}

function listDirectory(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return []; // not a directory, or unreadable: glob(3) skips it too
  }
}

function compareByteWise(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A predicate for one path segment's glob (`*.conf`, `site-?`, `[a-c]*`). */
export function globSegmentMatcher(segment: string): (name: string) => boolean {
  const regex = new RegExp(`^${globSegmentToRegExpSource(segment)}$`, 'su');
  const matchesLeadingDot = segment.startsWith('.') || segment.startsWith('\\.');
  return (name) => (matchesLeadingDot || !name.startsWith('.')) && regex.test(name);
}

function globSegmentToRegExpSource(segment: string): string {
  const chars = Array.from(segment); // code points, so `?` matches one character
  let source = '';
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] ?? '';
    if (ch === '*') {
      source += '.*';
    } else if (ch === '?') {
      source += '.';
    } else if (ch === '[') {
      const bracket = bracketExpression(chars, i);
      source += bracket ? bracket.source : escapeRegExp(ch);
      if (bracket) i = bracket.end;
    } else if (ch === '\\' && i + 1 < chars.length) {
      source += escapeRegExp(chars[++i] ?? '');
    } else {
      source += escapeRegExp(ch);
    }
  }
  return source;
}

/**
 * Parses `[...]` starting at `open`: `[abc]`, `[a-z]`, `[!x]` or `[^x]` for
 * negation, `]` first is literal. Returns undefined when unclosed, in which
 * case glob(3) takes the `[` literally.
 */
function bracketExpression(chars: string[], open: number): { source: string; end: number } | undefined {
  let i = open + 1;
  const negated = chars[i] === '!' || chars[i] === '^';
  if (negated) i++;
  let members = '';
  for (let first = true; i < chars.length; i++, first = false) {
    const ch = chars[i] ?? '';
    if (ch === ']' && !first) {
      return { source: `[${negated ? '^' : ''}${members}]`, end: i };
    }
    const rangeEnd = chars[i + 2];
    if (chars[i + 1] === '-' && rangeEnd !== undefined && rangeEnd !== ']') {
      // A reversed range matches nothing in glob(3); a JavaScript class would throw.
      if ((ch.codePointAt(0) ?? 0) <= (rangeEnd.codePointAt(0) ?? 0)) members += `${codePointEscape(ch)}-${codePointEscape(rangeEnd)}`;
      i += 2;
    } else {
      members += codePointEscape(ch);
    }
  }
  return undefined;
}

function codePointEscape(ch: string): string {
  return `\\u{${(ch.codePointAt(0) ?? 0).toString(16)}}`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}
