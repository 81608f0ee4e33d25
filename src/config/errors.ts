/**
 * Configuration diagnostics. Every error a user can make in a config file is
 * reported as `FILE:LINE:COL: message`, like `nginx -t`, so editors and CI logs
 * can jump to it. A load never stops at the first error: all diagnostics found
 * are collected and reported together.
 */

export interface SourceLocation {
  file: string;
  /** 1-based line number. */
  line: number;
  /** 1-based column number. */
  column: number;
}

export interface ConfigDiagnostic {
  loc: SourceLocation | undefined;
  message: string;
  /** The directive (nginx) or key path (YAML/JSON) the message is about, when known. */
  directive?: string;
}

export function formatLocation(loc: SourceLocation | undefined): string {
  return loc ? `${loc.file}:${loc.line}:${loc.column}` : '<config>';
}

export function formatDiagnostic(d: ConfigDiagnostic): string {
  return `${formatLocation(d.loc)}: ${d.message}`;
}

/** Thrown when a configuration cannot be loaded; carries every diagnostic found. */
export class ConfigError extends Error {
  readonly diagnostics: readonly ConfigDiagnostic[];

  constructor(diagnostics: readonly ConfigDiagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join('\n'));
    this.name = 'ConfigError';
    this.diagnostics = diagnostics;
  }
}
