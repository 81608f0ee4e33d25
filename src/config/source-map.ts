/**
 * Where each part of a configuration model came from. Front ends record the
 * source location of every key path they produce (e.g.
 * `http.servers.1.locations.0.proxy_pass`), so schema errors and compile
 * errors can name the file, line and directive.
 */
import type { SourceLocation } from './errors.js';

export type ModelPath = readonly (string | number)[];

export interface SourceLocator {
  /** The location of `path`, or of its closest recorded ancestor. */
  locate(path: ModelPath): SourceLocation | undefined;
  /** The directive or key name that produced `path`, when the front end knows it. */
  directiveAt?(path: ModelPath): string | undefined;
}

export class PathSourceMap implements SourceLocator {
  private readonly locations = new Map<string, SourceLocation>();
  private readonly directives = new Map<string, string>();

  set(path: ModelPath, loc: SourceLocation, directive?: string): void {
    const key = path.join('\0');
    this.locations.set(key, loc);
    if (directive !== undefined) this.directives.set(key, directive);
  }

  locate(path: ModelPath): SourceLocation | undefined {
    for (let n = path.length; n >= 0; n--) {
      const loc = this.locations.get(path.slice(0, n).join('\0'));
      if (loc !== undefined) return loc;
    }
    return undefined;
  }

  directiveAt(path: ModelPath): string | undefined {
    for (let n = path.length; n >= 0; n--) {
      const d = this.directives.get(path.slice(0, n).join('\0'));
      if (d !== undefined) return d;
    }
    return undefined;
  }
}
