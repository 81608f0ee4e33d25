/**
 * nginx location matching (ngx_http_core_find_location), compiled:
 *
 *  1. `= /exact` locations: one Map lookup; a hit ends the search.
 *  2. The longest matching prefix among `/prefix` and `^~ /prefix`: one Map
 *     lookup per distinct prefix length (longest first), so the cost depends
 *     on the URI length, not on how many locations there are.
 *  3. If that prefix location has nested locations, the search recurses into
 *     them first (their regexes win over outer ones, as in nginx).
 *  4. Unless the prefix was `^~`, regex locations (`~`, `~*`) are tried in
 *     configuration order; the first match wins.
 *  5. Otherwise the longest prefix is used.
 */

import { mapKey } from './map-key.js';

export type MatchKind = 'exact' | 'prefix' | 'prefix_no_regex' | 'regex' | 'regex_caseless';

export interface LocationPattern {
  kind: MatchKind;
  /** Path for exact/prefix kinds, source for regex kinds. */
  pattern: string;
}

/** Parses nginx's `location [modifier] uri` argument text. */
export function parseLocationMatch(text: string): LocationPattern | { error: string } {
  const m = /^(=|\^~|~\*|~)\s+(.+)$/.exec(text) ?? /^(=|\^~|~\*|~)(\S.*)$/.exec(text);
  if (m === null) return { kind: 'prefix', pattern: text };
  const modifier = m[1]!;
  const pattern = m[2]!.trim();
  switch (modifier) {
    case '=':
      return { kind: 'exact', pattern };
    case '^~':
      return { kind: 'prefix_no_regex', pattern };
    case '~':
      return { kind: 'regex', pattern };
    default:
      return { kind: 'regex_caseless', pattern };
  }
}

export interface MatchableLocation<L> {
  match: LocationPattern;
  regex: RegExp | undefined;
  /** Nested locations, already compiled. */
  children: LocationMatcher<L> | undefined;
  value: L;
}

export interface LocationMatch<L> {
  value: L;
  /** Regex captures ($1..$9) when a regex location matched. */
  captures: string[] | null;
}

/** A prefix location and the result it gives when no regex wins (made once: no allocation per request). */
interface PrefixEntry<L> {
  location: MatchableLocation<L>;
  match: LocationMatch<L>;
}

export class LocationMatcher<L> {
  /** Exact locations' results, made once: no allocation per request. */
  private readonly exact = new Map<string, LocationMatch<L>>();
  private readonly prefixes = new Map<string, PrefixEntry<L>>();
  /** Distinct prefix lengths, longest first. */
  private readonly prefixLengths: number[];
  private readonly regexes: MatchableLocation<L>[] = [];

  constructor(locations: readonly MatchableLocation<L>[]) {
    const lengths = new Set<number>();
    for (const loc of locations) {
      switch (loc.match.kind) {
        case 'exact':
          this.exact.set(mapKey(loc.match.pattern), { value: loc.value, captures: null });
          break;
        case 'prefix':
        case 'prefix_no_regex':
          this.prefixes.set(mapKey(loc.match.pattern), { location: loc, match: { value: loc.value, captures: null } });
          lengths.add(loc.match.pattern.length);
          break;
        default:
          this.regexes.push(loc);
      }
    }
    this.prefixLengths = [...lengths].sort((a, b) => b - a);
  }

  find(uri: string): LocationMatch<L> | undefined {
    const exact = this.exact.get(uri);
    if (exact !== undefined) return exact;

    let found: PrefixEntry<L> | undefined;
    const lengths = this.prefixLengths;
    for (let i = 0; i < lengths.length; i++) {
      const len = lengths[i]!;
      if (len > uri.length) continue;
      const hit = this.prefixes.get(len === uri.length ? uri : uri.slice(0, len));
      if (hit !== undefined) {
        found = hit;
        break;
      }
    }

    const prefix = found?.location;
    if (prefix !== undefined && prefix.children !== undefined) {
      const nested = prefix.children.find(uri);
      if (nested !== undefined) return nested;
    }
    if (prefix === undefined || prefix.match.kind !== 'prefix_no_regex') {
      for (let i = 0; i < this.regexes.length; i++) {
        const loc = this.regexes[i]!;
        const m = loc.regex!.exec(uri);
        if (m !== null) return { value: loc.value, captures: m.length > 1 ? Array.from(m, (x) => x ?? '') : null };
      }
    }
    return found?.match;
  }
}

/**
 * Compiles an nginx (PCRE) regex into a JavaScript RegExp. Named groups
 * `(?<name>...)` and `(?P<name>...)` are accepted; anything JavaScript cannot
 * compile is a config error.
 */
export function compileNginxRegex(source: string, caseless: boolean): RegExp {
  const js = source.replace(/\(\?P</g, '(?<');
  return new RegExp(js, caseless ? 'i' : '');
}
