/**
 * The YAML library, loaded on first use: nginx-syntax users who never read a
 * YAML file do not pay its memory (about 2 MiB of heap).
 */
import { createRequire } from 'node:module';

let yaml: typeof import('yaml') | undefined;

export function yamlLibrary(): typeof import('yaml') {
  yaml ??= createRequire(import.meta.url)('yaml') as typeof import('yaml');
  return yaml;
}
