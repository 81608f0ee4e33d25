/**
 * nginx's ngx_http_auth_basic_module: `auth_basic` and `auth_basic_user_file`.
 *
 * nginx reads the user file on every request; fulcrum reads it when the
 * configuration is loaded (and reloaded), so a request costs no file I/O and
 * an unreadable file is a config error rather than a 500 for every client.
 */
import * as fs from 'node:fs';
import type { Template } from '../variables/template.js';
import type { VariableContext } from '../variables/context.js';
import { parseStoredHash, type PasswordCheck } from './password-hash.js';

export interface UserFile {
  path: string;
  /** The first line for each user, as nginx takes the first line that names the user. */
  users: ReadonlyMap<string, PasswordCheck | undefined>;
}

/** One level's auth_basic settings; realm and user file are inherited separately, as nginx merges them. */
export interface AuthBasicRuntime {
  /** undefined: `auth_basic off` or not set. */
  realm: Template | undefined;
  users: UserFile | undefined;
  /** Both a realm and a user file: requests must authenticate. */
  enabled: boolean;
}

/** A user file entry fulcrum cannot check: the line and why. */
export interface UserFileProblem {
  line: number;
  user: string;
  why: string;
}

/** Reads an htpasswd file the way nginx's handler scans it. Throws when it cannot be read. */
export function loadUserFile(path: string): { file: UserFile; problems: UserFileProblem[] } {
  const text = fs.readFileSync(path, 'latin1');
  const users = new Map<string, PasswordCheck | undefined>();
  const problems: UserFileProblem[] = [];
  text.split('\n').forEach((line, i) => {
    // nginx skips a line starting with '#' or CR, and a line without ':' never matches.
    if (line.startsWith('#') || line.startsWith('\r')) return;
    const colon = line.indexOf(':');
    if (colon <= 0) return;
    const user = line.slice(0, colon);
    if (users.has(user)) return;
    // The password ends at ':' (a comment follows) or at the end of the line.
    const rest = line.slice(colon + 1);
    const end = rest.search(/[:\r]/);
    const parsed = parseStoredHash(end < 0 ? rest : rest.slice(0, end));
    if ('unsupported' in parsed) {
      problems.push({ line: i + 1, user, why: parsed.unsupported });
      users.set(user, undefined);
    } else {
      users.set(user, parsed.check);
    }
  });
  return { file: { path, users }, problems };
}

/**
 * The user and password of an `Authorization: Basic` header, as nginx's
 * ngx_http_auth_basic_user decodes it; undefined when there is none or it is
 * malformed (no ':', empty user).
 */
export function basicCredentials(header: string | undefined): { user: string; password: Buffer } | undefined {
  if (header === undefined || header.length < 6 || header.slice(0, 6).toLowerCase() !== 'basic ') return undefined;
  let start = 6;
  while (header.charCodeAt(start) === 0x20) start++;
  const encoded = header.slice(start);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded)) return undefined;
  const decoded = Buffer.from(encoded, 'base64');
  const colon = decoded.indexOf(0x3a);
  if (colon <= 0) return undefined;
  return { user: decoded.toString('latin1', 0, colon), password: decoded.subarray(colon + 1) };
}

/** nginx's $remote_user: the user named in the Authorization header, checked or not. */
export function remoteUser(ctx: VariableContext): string {
  return basicCredentials(ctx.request.header('authorization'))?.user ?? '';
}

/** Whether the request's credentials match the user file. */
export function authenticated(auth: AuthBasicRuntime, ctx: VariableContext): boolean {
  const credentials = basicCredentials(ctx.request.header('authorization'));
  if (credentials === undefined) return false;
  const check = auth.users!.users.get(credentials.user);
  return check !== undefined && check(credentials.password);
}

/** The WWW-Authenticate value nginx sends with its 401. */
export function challenge(auth: AuthBasicRuntime, ctx: VariableContext): string {
  const realm = auth.realm!;
  return `Basic realm="${realm.constant ?? realm.expand(ctx)}"`;
}
