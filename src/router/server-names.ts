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

export class ServerNameMatcher<S> {
  private readonly exact = new Map<string, S>();
  /** Reversed-label suffixes from "*.a.b" and ".a.b", longest first. */
  private readonly leading: { suffix: string; alsoBare: boolean; server: S }[] = [];
  private readonly trailing: { prefix: string; server: S }[] = [];
  private readonly regexes: { regex: RegExp; server: S }[] = [];

  constructor(
    entries: readonly { names: readonly string[]; server: S }[],
    readonly defaultServer: S,
  ) {
    for (const { names, server } of entries) {
      for (const raw of names) this.add(raw, server);
    }
    this.leading.sort((a, b) => b.suffix.length - a.suffix.length);
    this.trailing.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  private add(name: string, server: S): void {
    if (name.startsWith('~')) {
      this.regexes.push({ regex: new RegExp(name.slice(1).replace(/\(\?P</g, '(?<'), 'i'), server });
    } else if (name.startsWith('*.')) {
      this.leading.push({ suffix: name.slice(1), alsoBare: false, server });
    } else if (name.startsWith('.')) {
      this.leading.push({ suffix: name, alsoBare: true, server });
      if (!this.exact.has(name.slice(1))) this.exact.set(name.slice(1), server);
    } else if (name.endsWith('.*')) {
      this.trailing.push({ prefix: name.slice(0, -1), server });
    } else if (!this.exact.has(name)) {
      // The first server that names a host wins, like nginx (which warns on conflicts).
      this.exact.set(name, server);
    }
  }

  /** `host` is lowercased, without port and trailing dot; '' when the request had no Host. */
  find(host: string): S {
    const exact = this.exact.get(host);
    if (exact !== undefined) return exact;
    for (const w of this.leading) {
      if (host.length > w.suffix.length && host.endsWith(w.suffix)) return w.server;
    }
    for (const w of this.trailing) {
      if (host.length > w.prefix.length && host.startsWith(w.prefix)) return w.server;
    }
    for (const r of this.regexes) {
      if (r.regex.test(host)) return r.server;
    }
    return this.defaultServer;
  }

  /** Whether any server on this socket has a server_name at all other than the empty one. */
  get size(): number {
    return this.exact.size + this.leading.length + this.trailing.length + this.regexes.length;
  }
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
