/**
 * nginx's `map` (ngx_http_map_module): a variable whose value is chosen by
 * matching a string built from other variables. Matching follows nginx's
 * order: a string key (ignoring case), then with `hostnames` the longest
 * "*.example.com" / ".example.com" mask and the longest "mail.*" mask, then
 * the first "~regex" / "~*regex" in configuration order, then `default`.
 * A regex's captures ($1..$9 and named ones) can be used in its value.
 *
 * Like nginx, a map costs nothing until a directive uses its variable; it is
 * evaluated each time it is used (nginx caches it per request unless
 * `volatile`; fulcrum's map values only depend on the request, so the result
 * is the same).
 */
import type { MapBlockConfig } from '../config/schema.js';
import { mapKey } from '../router/map-key.js';
import { ServerNameMatcher } from '../router/server-names.js';
import type { VariableContext } from './context.js';
import { compileTemplate, UnknownVariableError, variableGetter, type Getter, type Template, type VariableScope } from './template.js';

/** Where a problem is: the map's index, and the entry's (undefined: the map itself). */
export type MapErrorSink = (map: number, entry: number | undefined, message: string) => void;

/** The captures of the map regex whose value is being expanded (values expand synchronously, one at a time). */
let captures: RegExpExecArray | null = null;

class MapVariable {
  private readonly exact = new Map<string, Template>();
  /** With `hostnames`: exact names and masks, as server_name matches them. */
  private masks: ServerNameMatcher<Template | undefined> | undefined;
  private readonly regexes: { regex: RegExp; value: Template }[] = [];
  private defaultValue!: Template;
  private source!: Template;
  private evaluating = false;

  constructor(
    readonly def: MapBlockConfig,
    private readonly index: number,
  ) {}

  /** Compiles the source, values and regexes against `scope` (which holds every map, so maps can use each other). */
  compile(scope: VariableScope, error: MapErrorSink): void {
    const template = (text: string, entry: number | undefined, local?: VariableScope): Template | undefined => {
      try {
        return compileTemplate(text, local ?? scope);
      } catch (err) {
        if (!(err instanceof UnknownVariableError)) throw err;
        error(this.index, entry, err.message);
        return undefined;
      }
    };
    this.source = template(this.def.source, undefined) ?? compileTemplate('');
    this.defaultValue = template(this.def.default, undefined) ?? compileTemplate('');
    const hostEntries: { names: string[]; server: Template }[] = [];
    this.def.entries.forEach((e, i) => {
      if (e.key.startsWith('~')) {
        const caseless = e.key.startsWith('~*');
        let regex: RegExp;
        try {
          // PCRE's (?P<name>...) is JavaScript's (?<name>...).
          regex = new RegExp(e.key.slice(caseless ? 2 : 1).replace(/\(\?P</g, '(?<'), caseless ? 'i' : '');
        } catch (err) {
          error(this.index, i, `invalid regular expression "${e.key}": ${(err as Error).message}`);
          return;
        }
        const value = template(e.value, i, capturesScope(regex, scope));
        if (value !== undefined) this.regexes.push({ regex, value });
        return;
      }
      const value = template(e.value, i);
      if (value === undefined) return;
      if (this.def.hostnames) hostEntries.push({ names: [mapKey(hostKey(e.key))], server: value });
      else this.exact.set(mapKey(e.key.toLowerCase()), value);
    });
    if (this.def.hostnames) this.masks = new ServerNameMatcher<Template | undefined>(hostEntries, undefined);
  }

  get(ctx: VariableContext): string {
    // A map that uses itself (directly or through another map): nginx fails the request; fulcrum gives ''.
    if (this.evaluating) return '';
    this.evaluating = true;
    try {
      const key = this.source.expand(ctx);
      const found = this.masks !== undefined ? this.masks.find(hostKey(key)) : this.exact.get(key.toLowerCase());
      if (found !== undefined) return found.expand(ctx);
      for (let i = 0; i < this.regexes.length; i++) {
        const m = this.regexes[i]!.regex.exec(key);
        if (m === null) continue;
        const outer = captures;
        captures = m;
        try {
          return this.regexes[i]!.value.expand(ctx);
        } finally {
          captures = outer;
        }
      }
      return this.defaultValue.expand(ctx);
    } finally {
      this.evaluating = false;
    }
  }
}

/** Host names as server names are compared: lowercase, no trailing dot. */
function hostKey(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** In a regex entry's value, $1..$9 and the regex's named groups are its captures. */
function capturesScope(regex: RegExp, outer: VariableScope): VariableScope {
  const local = new Map(outer);
  for (let i = 1; i <= 9; i++) local.set(String(i), () => captures?.[i] ?? '');
  for (const name of namedGroups(regex)) local.set(name, () => captures?.groups?.[name] ?? '');
  return local;
}

function namedGroups(regex: RegExp): string[] {
  return [...regex.source.matchAll(/\(\?<([A-Za-z_][A-Za-z0-9_]*)>/g)].map((m) => m[1]!);
}

/**
 * The variables every map in `defs` defines, compiled. A name that is
 * already a built-in variable, or defined twice, is an error (nginx:
 * "the duplicate variable").
 */
export function compileMaps(defs: readonly MapBlockConfig[], error: MapErrorSink): VariableScope {
  const scope = new Map<string, Getter>();
  const maps: MapVariable[] = [];
  defs.forEach((def, i) => {
    if (variableGetter(def.variable) !== undefined || scope.has(def.variable)) {
      error(i, undefined, `the duplicate "${def.variable}" variable`);
      return;
    }
    const map = new MapVariable(def, i);
    maps.push(map);
    scope.set(def.variable, (ctx) => map.get(ctx));
  });
  for (const map of maps) map.compile(scope, error);
  return scope;
}
