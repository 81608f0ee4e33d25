/**
 * sticky cookie NAME [expires=TIME|max] [domain=D] [path=P] [httponly]
 * [secure] [samesite=strict|lax|none] (nginx Plus syntax, plus fulcrum's
 * [secret=...]): session persistence. A client's first request goes where the
 * upstream's method sends it, and the response sets a cookie naming that
 * server; later requests carrying the cookie go to the same server, as long
 * as it can take them. A server that is draining (`drain`) still gets the
 * requests of its sessions and no new ones. When the bound server is down,
 * failed, unhealthy or full, the method picks another and the response
 * re-binds the cookie to it.
 *
 * The cookie value reveals nothing about the server: it is the first 128
 * bits, base64url, of HMAC-SHA256(key, upstream "\0" server address), and
 * the policy maps values back through a table made when the snapshot is
 * built. Without the key nobody can make a value that targets a server, or
 * tell which address a value stands for.
 *
 * The key must be the same in every worker, across reloads and across
 * restarts, or sessions move. It is derived (HMAC-SHA256 with a fixed label)
 * from, in order: the upstream's `secret=` (text, or `env:NAME` for an
 * environment variable); the FULCRUM_STICKY_SECRET environment variable;
 * the host's /etc/machine-id (stable across restarts on one host; identical
 * on clones of one image, which is what several instances behind one address
 * want); last, 32 random bytes, put into FULCRUM_STICKY_SECRET so that the
 * workers forked afterwards share them; then cookies survive reloads and
 * worker restarts but not a restart of fulcrum, and a warning says so. Give
 * several fulcrum instances serving one site the same `secret=`.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { BalancingPolicy, PickRequest, ServerSnapshot, Tried } from '../policy.js';
import type { ServerState } from '../../upstream/server-state.js';
import type { VariableContext } from '../../variables/context.js';

export const SECRET_ENV = 'FULCRUM_STICKY_SECRET';
const LABEL = 'fulcrum sticky cookie v1';

export interface StickyConfig {
  cookie: string;
  /** ms; undefined: a session cookie; 'max': nginx's far-future date. */
  expires?: number | 'max' | undefined;
  domain?: string | undefined;
  path?: string | undefined;
  httponly: boolean;
  secure: boolean;
  samesite?: 'strict' | 'lax' | 'none' | undefined;
  secret?: string | undefined;
}

export type SecretSource = 'config' | 'environment' | 'machine-id' | 'random';

/** The HMAC key for sticky cookies, and where it came from; an error message when `secret=env:X` names an unset variable. */
export function stickyKey(configured: string | undefined, env: NodeJS.ProcessEnv = process.env): { key: Buffer; source: SecretSource } | string {
  let material: string | undefined;
  let source: SecretSource;
  if (configured !== undefined) {
    if (configured.startsWith('env:')) {
      material = env[configured.slice(4)];
      if (material === undefined || material === '') return `the environment variable ${configured.slice(4)} (sticky secret) is not set`;
    } else {
      material = configured;
    }
    source = 'config';
  } else if (env[SECRET_ENV] !== undefined && env[SECRET_ENV] !== '') {
    material = env[SECRET_ENV];
    source = env.FULCRUM_STICKY_SECRET_RANDOM === '1' ? 'random' : 'environment';
  } else {
    material = machineId();
    source = 'machine-id';
    if (material === undefined) {
      material = randomBytes(32).toString('hex');
      env[SECRET_ENV] = material;
      env.FULCRUM_STICKY_SECRET_RANDOM = '1';
      source = 'random';
    }
  }
  return { key: createHmac('sha256', material).update(LABEL).digest(), source };
}

function machineId(): string | undefined {
  for (const file of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      const id = readFileSync(file, 'latin1').trim();
      if (id !== '') return id;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

/** nginx's `expires=max`. */
const MAX_EXPIRES = 'Thu, 31 Dec 2037 23:55:55 GMT';

/** The cookie side of sticky sessions: values, reading them from requests, setting them on responses. */
export class StickyCookie {
  /** Attributes after the value, except Expires, which depends on the time. */
  private readonly attributes: string;
  private readonly tokens = new Map<string, string>();

  constructor(
    readonly config: StickyConfig,
    readonly upstream: string,
    private readonly key: Buffer,
  ) {
    let a = '';
    if (config.expires === 'max') a += '; Expires=' + MAX_EXPIRES + '; Max-Age=315360000';
    else if (config.expires !== undefined) a += '; Max-Age=' + Math.floor(config.expires / 1000);
    if (config.domain !== undefined) a += '; Domain=' + config.domain;
    a += '; Path=' + (config.path ?? '/');
    if (config.httponly) a += '; HttpOnly';
    if (config.secure) a += '; Secure';
    if (config.samesite !== undefined) a += '; SameSite=' + config.samesite[0]!.toUpperCase() + config.samesite.slice(1);
    this.attributes = a;
  }

  /** The cookie value that stands for `server`. */
  token(server: ServerState): string {
    let t = this.tokens.get(server.key);
    if (t === undefined) {
      t = createHmac('sha256', this.key).update(`${this.upstream}\0${server.address}`).digest('base64url').slice(0, 22);
      this.tokens.set(server.key, t);
    }
    return t;
  }

  /** The cookie's value in the request, '' when absent. */
  read(vars: VariableContext): string {
    const { lower, values } = vars.request;
    const name = this.config.cookie;
    for (let i = 0; i < lower.length; i++) {
      if (lower[i] !== 'cookie') continue;
      const header = values[i]!;
      let at = 0;
      while (at < header.length) {
        while (at < header.length && (header.charCodeAt(at) === 32 || header.charCodeAt(at) === 59)) at++;
        const end = header.indexOf(';', at);
        const stop = end < 0 ? header.length : end;
        if (header.startsWith(name, at) && header.charCodeAt(at + name.length) === 61) return header.slice(at + name.length + 1, stop).trim();
        at = stop + 1;
      }
    }
    return '';
  }

  /** Adds Set-Cookie to a response from `server` unless the request's cookie already names it. */
  addSetCookie(headers: { add(name: string, value: string): void }, vars: VariableContext, server: ServerState): void {
    const token = this.token(server);
    if (this.read(vars) === token) return;
    let value = this.config.cookie + '=' + token;
    if (typeof this.config.expires === 'number') value += '; Expires=' + new Date(Date.now() + this.config.expires).toUTCString();
    headers.add('Set-Cookie', value + this.attributes);
  }
}

/** Wraps the upstream's method: bound requests go to their server, the others to the method. */
export class StickyPolicy implements BalancingPolicy {
  readonly name: string;
  private readonly byToken = new Map<string, ServerState>();

  constructor(
    snapshot: ServerSnapshot,
    private readonly inner: BalancingPolicy,
    readonly cookie: StickyCookie,
  ) {
    this.name = `${inner.name} + sticky cookie ${cookie.config.cookie}`;
    for (const s of snapshot.primary) this.byToken.set(cookie.token(s), s);
    for (const s of snapshot.backup) this.byToken.set(cookie.token(s), s);
  }

  pick(request: PickRequest, tried: Tried): ServerState | undefined {
    const bound = this.bound(request);
    if (bound !== undefined && (tried.length === 0 || !tried.includes(bound)) && bound.isAvailableForSticky(request.now)) return bound;
    return this.inner.pick(request, tried);
  }

  /** The server the request's cookie names, if it is one of this upstream's. */
  bound(request: PickRequest): ServerState | undefined {
    const value = this.cookie.read(request.vars);
    return value === '' ? undefined : this.byToken.get(value);
  }

  explain(server: ServerState, request: PickRequest): string {
    const bound = this.bound(request);
    if (bound === server) return `sticky cookie ${this.cookie.config.cookie}${server.drain ? ' (server draining: only its sessions)' : ''}`;
    const why = bound === undefined ? 'new session' : `session moved: its server ${bound.label} is ${bound.unavailability(request.now) ?? 'already tried'}`;
    return `${why}; ${this.inner.explain?.(server, request) ?? this.inner.name}`;
  }
}

export const sticky =
  (cookie: StickyCookie, inner: (snapshot: ServerSnapshot) => BalancingPolicy) =>
  (snapshot: ServerSnapshot): BalancingPolicy =>
    new StickyPolicy(snapshot, inner(snapshot), cookie);
