/**
 * Compiles the settings of nginx's auth_basic, satisfy and realip modules for
 * one level (http, server or location). Each returns the parent's object when
 * the level sets none of its directives, so an unconfigured request reads one
 * field that is undefined.
 */
import type { Settings } from '../config/schema.js';
import type { ModelPath } from '../config/source-map.js';
import { TrustedSources, type RealIpRuntime } from '../net/real-ip.js';
import { loadUserFile, type AuthBasicRuntime } from '../proxy/auth-basic.js';
import type { Template } from '../variables/template.js';

/** What these compilers need from the compiler. */
export interface LevelCompiler {
  error(p: ModelPath, message: string): void;
  warn(p: ModelPath, message: string): void;
  template(p: ModelPath, source: string): Template | undefined;
  resolvePath(p: string): string;
}

export function compileAuthBasic(c: LevelCompiler, parent: AuthBasicRuntime | undefined, s: Settings, p: ModelPath): AuthBasicRuntime | undefined {
  if (s.auth_basic === undefined && s.auth_basic_user_file === undefined) return parent;
  let realm = parent?.realm;
  if (s.auth_basic !== undefined) realm = s.auth_basic === 'off' ? undefined : c.template([...p, 'auth_basic'], s.auth_basic);
  let users = parent?.users;
  if (s.auth_basic_user_file !== undefined) {
    const at = [...p, 'auth_basic_user_file'];
    if (s.auth_basic_user_file.includes('$')) {
      c.error(at, 'variables in "auth_basic_user_file" are not supported: the file is read when the configuration is loaded');
      users = undefined;
    } else {
      const file = c.resolvePath(s.auth_basic_user_file);
      try {
        const loaded = loadUserFile(file);
        for (const problem of loaded.problems) {
          c.warn(at, `user "${problem.user}" (${file}:${problem.line}): ${problem.why} are not supported, the entry never matches`);
        }
        users = loaded.file;
      } catch (err) {
        c.error(at, `cannot read "${file}": ${(err as Error).message}`);
        users = undefined;
      }
    }
  }
  return { realm, users, enabled: realm !== undefined && users !== undefined };
}

export function compileRealIp(c: LevelCompiler, parent: RealIpRuntime | undefined, s: Settings, p: ModelPath): RealIpRuntime | undefined {
  if (s.set_real_ip_from === undefined && s.real_ip_header === undefined && s.real_ip_recursive === undefined) return parent;
  let trusted = parent?.trusted;
  if (s.set_real_ip_from !== undefined) {
    trusted = new TrustedSources();
    for (const [i, source] of s.set_real_ip_from.entries()) {
      const problem = trusted.add(source);
      if (problem !== undefined) c.error([...p, 'set_real_ip_from', i], problem);
    }
  }
  return {
    trusted,
    header: s.real_ip_header !== undefined ? s.real_ip_header.toLowerCase() : (parent?.header ?? 'x-real-ip'),
    recursive: s.real_ip_recursive ?? parent?.recursive ?? false,
  };
}
