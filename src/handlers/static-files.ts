/**
 * Static files for `root` and `alias` locations: the seed's ACME webroot
 * (/.well-known/acme-challenge/ served from /var/www/certbot for certbot's
 * HTTP-01 challenges), and plain files generally.
 *
 * The URI is already normalised (no `..`, no encoded slashes left), and the
 * final path is checked to stay inside the directory anyway: a request can
 * never leave the webroot. Symlinks inside the webroot are followed, like
 * nginx's default (disable_symlinks off).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Exchange } from '../proxy/exchange.js';
import { absoluteLocation } from './return.js';
import type { EffectiveSettings, StaticRuntime } from '../runtime/table.js';

const MIME: Record<string, string> = {
  '.html': 'text/html',
  '.htm': 'text/html',
  '.css': 'text/css',
  '.js': 'application/javascript',
  '.mjs': 'application/javascript',
  '.json': 'application/json',
  '.txt': 'text/plain',
  '.xml': 'text/xml',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.pdf': 'application/pdf',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
};

export function mimeType(file: string, fallback: string): string {
  return MIME[path.extname(file).toLowerCase()] ?? fallback;
}

export function serveStatic(ex: Exchange, files: StaticRuntime, settings: EffectiveSettings): void {
  const method = ex.method;
  if (method !== 'GET' && method !== 'HEAD') return ex.reject(405);
  const target = fileFor(files, ex.uri);
  if (target === undefined) return ex.respondError(403);
  void serve(ex, target, settings, ex.uri.endsWith('/'));
}

/** The file a URI names under `root` (or `alias`), or undefined when it would be outside that directory. */
export function fileFor(files: StaticRuntime, uri: string): string | undefined {
  const relative = files.alias !== undefined && uri.startsWith(files.alias.prefix) ? uri.slice(files.alias.prefix.length) : uri;
  const target = path.join(files.directory, relative);
  const base = path.resolve(files.directory);
  return target === base || target.startsWith(base.endsWith(path.sep) ? base : base + path.sep) ? target : undefined;
}

async function serve(ex: Exchange, target: string, settings: EffectiveSettings, isDirectoryUri: boolean): Promise<void> {
  let file = target;
  if (isDirectoryUri) {
    const index = await findIndex(target, settings.index);
    if (ex.isFinished) return;
    if (index === undefined) return ex.respondError((await isDirectory(target)) ? 403 : 404);
    file = index;
  }
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, 'r');
  } catch (err) {
    return ex.respondError(statusForError(err));
  }
  try {
    const stat = await handle.stat();
    if (ex.isFinished) return;
    if (stat.isDirectory()) {
      // As nginx: an absolute URL, and its built-in page as the body.
      return ex.respondRedirect(301, absoluteLocation(ex, ex.uri + '/' + (ex.args === '' ? '' : '?' + ex.args)));
    }
    if (!stat.isFile()) return ex.respondError(404);
    // etag off: none is sent, and an If-None-Match then never matches (nginx's not-modified filter).
    const etag = !settings.etag ? '' : `"${Math.floor(stat.mtimeMs / 1000).toString(16)}-${stat.size.toString(16)}"`;
    const lastModified = stat.mtime.toUTCString();
    const headers = ex.down.responseHeaders();
    headers.add('Content-Type', mimeType(file, settings.defaultType));
    headers.add('Last-Modified', lastModified);
    if (etag !== '') headers.add('ETag', etag);
    headers.add('Accept-Ranges', 'bytes');
    if (notModified(ex, etag, stat.mtime)) return ex.respondFull(304, headers, null, true);
    if (stat.size <= 65536) {
      const body = Buffer.alloc(stat.size);
      await handle.read(body, 0, stat.size, 0);
      if (ex.isFinished) return;
      return ex.respondFull(200, headers, body);
    }
    await streamFile(ex, handle, stat.size, headers);
  } catch (err) {
    if (!ex.isFinished) ex.respondError(statusForError(err));
  } finally {
    await handle.close().catch(() => undefined);
  }
}

async function streamFile(ex: Exchange, handle: fs.promises.FileHandle, size: number, headers: ReturnType<Exchange['down']['responseHeaders']>): Promise<void> {
  ex.beginStream(200, headers, size);
  if (ex.request.method === 'HEAD') return ex.streamEnd();
  let position = 0;
  while (position < size && !ex.isFinished) {
    const chunk = Buffer.allocUnsafe(Math.min(65536, size - position));
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, position);
    if (bytesRead === 0) return ex.streamAbort('file shrank while being sent');
    position += bytesRead;
    if (ex.isFinished) return;
    if (!ex.streamData(bytesRead === chunk.length ? chunk : chunk.subarray(0, bytesRead))) await ex.down.waitForDrain();
  }
  if (!ex.isFinished) ex.streamEnd();
}

function notModified(ex: Exchange, etag: string, mtime: Date): boolean {
  const inm = ex.request.header('if-none-match');
  if (inm !== undefined) return etag !== '' && (inm === '*' || inm.split(',').some((t) => t.trim() === etag));
  const ims = ex.request.header('if-modified-since');
  if (ims === undefined) return false;
  const since = Date.parse(ims);
  return !Number.isNaN(since) && Math.floor(mtime.getTime() / 1000) <= Math.floor(since / 1000);
}

async function findIndex(dir: string, names: readonly string[]): Promise<string | undefined> {
  for (const name of names) {
    const candidate = path.join(dir, name);
    try {
      const st = await fs.promises.stat(candidate);
      if (st.isFile()) return candidate;
    } catch {
      // try the next index name
    }
  }
  return undefined;
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await fs.promises.stat(p)).isDirectory();
  } catch {
    return false;
  }
}

function statusForError(err: unknown): number {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return 404;
  if (code === 'EACCES' || code === 'EPERM') return 403;
  return 500;
}
