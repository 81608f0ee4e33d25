/**
 * Choosing the virtual server for a request, as nginx does
 * (https://nginx.org/en/docs/http/server_names.html): among the servers
 * listening on the socket the request came in on, by the Host name:
 *   1. exact name;
 *   2. longest wildcard starting with an asterisk ("*.example.org", and
 *      ".example.org" which also matches "example.org");
 *   3. longest wildcard ending with an asterisk ("mail.*");
 *   4. first matching regular expression ("~^www\d+\.example\.net$"), in
 *      configuration order;
 *   5. otherwise the default server of the listen socket.
 */
import { mapKey } from './map-key.js';

export class ServerNameMatcher<S> {
  private readonly exact = new Map<string, S>();
  /**
   * Wildcards by their fixed part: ".a.b" for "*.a.b" and ".a.b", "mail." for
   * "mail.*". A host is looked up by each of its dot-bounded suffixes
   * (longest first) and prefixes (longest first): as many Map lookups as the
   * host has dots, however many wildcard names there are (nginx hashes its
   * wildcard names for the same reason).
   */
  private readonly leading = new Map<string, S>();
  private readonly trailing = new Map<string, S>();
  private readonly regexes: { regex: RegExp; server: S }[] = [];

  constructor(
    entries: readonly { names: readonly string[]; server: S }[],
    readonly defaultServer: S,
  ) {
    for (const { names, server } of entries) {
      for (const raw of names) this.add(raw, server);
    }
  }

  private add(name: string, server: S): void {
    if (name.startsWith('~')) {
      this.regexes.push({ regex: new RegExp(name.slice(1).replace(/\(\?P</g, '(?<'), 'i'), server });
    } else if (name.startsWith('*.')) {
      setFirst(this.leading, name.slice(1), server);
    } else if (name.startsWith('.')) {
      setFirst(this.leading, name, server);
      setFirst(this.exact, name.slice(1), server);
    } else if (name.endsWith('.*')) {
      setFirst(this.trailing, name.slice(0, -1), server);
    } else {
      setFirst(this.exact, name, server);
    }
  }

  /** `host` is lowercased, without port and trailing dot; '' when the request had no Host. */
  find(host: string): S {
    const exact = this.exact.get(host);
    if (exact !== undefined) return exact;
    if (this.leading.size > 0) {
      // Suffixes that leave at least one character before them, longest first.
      for (let dot = host.indexOf('.', 1); dot > 0; dot = host.indexOf('.', dot + 1)) {
        const server = this.leading.get(host.slice(dot));
        if (server !== undefined) return server;
      }
    }
    if (this.trailing.size > 0) {
      // Prefixes that leave at least one character after them, longest first.
      for (let dot = host.lastIndexOf('.', host.length - 2); dot >= 0; dot = dot === 0 ? -1 : host.lastIndexOf('.', dot - 1)) {
        const server = this.trailing.get(host.slice(0, dot + 1));
        if (server !== undefined) return server;
      }
    }
    for (const r of this.regexes) {
      if (r.regex.test(host)) return r.server;
    }
    return this.defaultServer;
  }

  /** Whether any server on this socket has a server_name at all other than the empty one. */
  get size(): number {
    return this.exact.size + this.leading.size + this.trailing.size + this.regexes.length;
  }
}

/** The first server that names a host (or a wildcard) wins, like nginx (which warns on conflicts). */
function setFirst<S>(map: Map<string, S>, key: string, server: S): void {
  if (!map.has(key)) map.set(mapKey(key), server);
}

/** nginx's $host from a Host value: lowercase, no port, no trailing dot. */
export function hostWithoutPort(host: string): string {
  let end = host.length;
  if (host.charCodeAt(0) === 0x5b /* [ */) {
    const close = host.indexOf(']');
    end = close < 0 ? host.length : close + 1;
  } else {
    const colon = host.indexOf(':');
    if (colon >= 0) end = colon;
  }
  if (end > 0 && host.charCodeAt(end - 1) === 0x2e /* . */) end--;
  return end === host.length ? host : host.slice(0, end);
}
