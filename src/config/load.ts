/**
 * Loading a configuration: pick the front end by format, parse, validate
 * against the schema, and report every problem with its file and line.
 * Nothing here touches the network or the running proxy; compile.ts turns the
 * validated model into a runtime table.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Document } from 'yaml';
import type { ZodError } from 'zod/v3';
import { yamlLibrary } from './yaml-parser.js';
import { ConfigError, type ConfigDiagnostic, type SourceLocation } from './errors.js';
import { parseNginxFile, parseNginxText } from './nginx/parse.js';
import { translateNginx } from './nginx/translate.js';
import { ConfigSchema, type Config } from './schema.js';
import type { ModelPath, SourceLocator } from './source-map.js';

export type ConfigFormat = 'nginx' | 'yaml' | 'json';

export interface LoadedConfig {
  config: Config;
  format: ConfigFormat;
  /** The main file and every file it included. */
  files: string[];
  warnings: ConfigDiagnostic[];
  locator: SourceLocator;
  /** Directory relative paths (root, certificates, logs) resolve against. */
  baseDir: string;
}

export interface LoadOptions {
  format?: ConfigFormat | undefined;
  /** Config text to use instead of reading `file` (the admin API's validate-only call). */
  text?: string | undefined;
}

/**
 * nginx's `-g`: directives given on the command line, read as if they ended
 * the main context of the configuration file. They belong to the process,
 * not to one load: every reload (and every worker, and the admin API's
 * validation) reads the file with them, as nginx keeps its `-g` for its whole
 * life. Set once by the command line before anything loads.
 */
let commandLineDirectives: string | undefined;
/** Shown where a diagnostic's file would be, as nginx says "in command line". */
export const COMMAND_LINE_SOURCE = '(command line -g)';

export function setCommandLineDirectives(text: string | undefined): void {
  commandLineDirectives = text;
}

export function getCommandLineDirectives(): string | undefined {
  return commandLineDirectives;
}

export function detectFormat(file: string): ConfigFormat {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.yaml' || ext === '.yml') return 'yaml';
  if (ext === '.json') return 'json';
  return 'nginx';
}

/** Loads and validates a configuration file. Throws ConfigError listing every problem found. */
export function loadConfig(file: string, options: LoadOptions = {}): LoadedConfig {
  const format = options.format ?? detectFormat(file);
  const absolute = path.resolve(file);
  if (commandLineDirectives !== undefined && format !== 'nginx') {
    throw new ConfigError([{ loc: undefined, message: `-g "${commandLineDirectives}": command-line directives apply to nginx-syntax configurations only` }]);
  }
  const front = format === 'nginx' ? readNginx(absolute, options.text) : readYaml(absolute, options.text);
  const diagnostics = [...front.diagnostics];
  let config: Config | undefined;
  if (diagnostics.length === 0) {
    const parsed = ConfigSchema.safeParse(front.model);
    if (parsed.success) config = parsed.data;
    else diagnostics.push(...schemaDiagnostics(parsed.error, front.locator, format));
  }
  if (diagnostics.length > 0 || config === undefined) throw new ConfigError(diagnostics);
  return { config, format, files: front.files, warnings: front.warnings, locator: front.locator, baseDir: path.dirname(absolute) };
}

interface FrontEndResult {
  model: unknown;
  files: string[];
  diagnostics: ConfigDiagnostic[];
  warnings: ConfigDiagnostic[];
  locator: SourceLocator;
}

function readNginx(file: string, text: string | undefined): FrontEndResult {
  const parsed = text === undefined ? parseNginxFile(file) : parseNginxText(text, file);
  const extra = commandLineDirectives === undefined ? undefined : parseNginxText(commandLineDirectives, COMMAND_LINE_SOURCE, { prefix: path.dirname(file) });
  const translated = translateNginx(extra === undefined ? parsed.directives : [...parsed.directives, ...extra.directives]);
  return {
    model: translated.model,
    files: parsed.files.length > 0 ? parsed.files : [file],
    diagnostics: [...parsed.diagnostics, ...(extra?.diagnostics ?? []), ...translated.diagnostics],
    warnings: translated.warnings,
    locator: translated.sourceMap,
  };
}

function readYaml(file: string, text: string | undefined): FrontEndResult {
  let source: string;
  try {
    source = text ?? fs.readFileSync(file, 'utf8');
  } catch (err) {
    return failedRead(file, err);
  }
  const { LineCounter, parseDocument } = yamlLibrary();
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number): SourceLocation => {
    const pos = lineCounter.linePos(offset);
    return { file, line: pos.line, column: pos.col };
  };
  const diagnostics: ConfigDiagnostic[] = doc.errors.map((e) => ({ loc: at(e.pos[0]), message: e.message.split('\n')[0]! }));
  const locator = new YamlLocator(doc, at);
  return { model: diagnostics.length === 0 ? (doc.toJS() ?? {}) : {}, files: [file], diagnostics, warnings: [], locator };
}

function failedRead(file: string, err: unknown): FrontEndResult {
  const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : (err as Error).message;
  return {
    model: {},
    files: [file],
    diagnostics: [{ loc: undefined, message: `open() "${file}" failed (${reason})` }],
    warnings: [],
    locator: { locate: () => undefined },
  };
}

class YamlLocator implements SourceLocator {
  constructor(
    private readonly doc: Document,
    private readonly at: (offset: number) => SourceLocation,
  ) {}

  locate(p: ModelPath): SourceLocation | undefined {
    for (let n = p.length; n >= 0; n--) {
      const node = this.doc.getIn(p.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node?.range !== undefined) return this.at(node.range[0]);
    }
    return undefined;
  }

  /** The position of a key inside the map at `p` (for "unknown key" errors). */
  locateKey(p: ModelPath, key: string): SourceLocation | undefined {
    const { isMap, isScalar } = yamlLibrary();
    const node = p.length === 0 ? this.doc.contents : this.doc.getIn(p, true);
    if (isMap(node)) {
      for (const pair of node.items) {
        if (isScalar(pair.key) && pair.key.value === key && pair.key.range) return this.at(pair.key.range[0]);
      }
    }
    return this.locate(p);
  }

  directiveAt(p: ModelPath): string | undefined {
    const last = [...p].reverse().find((x) => typeof x === 'string');
    return typeof last === 'string' ? last : undefined;
  }
}

function schemaDiagnostics(error: ZodError, locator: SourceLocator, format: ConfigFormat): ConfigDiagnostic[] {
  const out: ConfigDiagnostic[] = [];
  for (const issue of error.issues) {
    const p = issue.path.filter((x): x is string | number => typeof x !== 'symbol');
    const directive = locator.directiveAt?.(p);
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const loc = locator instanceof YamlLocator ? locator.locateKey(p, key) : locator.locate(p);
        out.push({ loc, message: `unknown key "${key}"${where(p)}`, directive: key });
      }
      continue;
    }
    const subject = format === 'nginx' && directive !== undefined ? `"${directive}" directive` : `"${p.join('.') || '(root)'}"`;
    out.push({ loc: locator.locate(p), message: `${subject}: ${issue.message}`, directive });
  }
  return out;
}

function where(p: ModelPath): string {
  return p.length === 0 ? '' : ` in "${p.join('.')}"`;
}
