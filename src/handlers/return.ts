/**
 * nginx's `return`: a redirect (301/302/303/307/308 with a URL in Location),
 * a status with a text body, a bare status (nginx's built-in page for errors,
 * an empty body otherwise), or 444 (close the connection without answering).
 */
import type { Exchange } from '../proxy/exchange.js';
import { hasErrorPage } from '../proxy/error-pages.js';
import type { EffectiveSettings, ReturnRuntime } from '../runtime/table.js';

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export function serveReturn(ex: Exchange, ret: ReturnRuntime, settings: EffectiveSettings): void {
  const code = ret.code;
  if (code === 444) return ex.streamAbort('return 444');
  const text = ret.text === undefined ? undefined : ret.text.constant ?? ret.text.expand(ex);
  if (REDIRECTS.has(code)) return ex.respondRedirect(code, text === undefined ? '' : absoluteLocation(ex, text));
  const headers = ex.down.responseHeaders();
  if (text !== undefined) {
    headers.add('Content-Type', settings.defaultType);
    return ex.respondFull(code, headers, Buffer.from(text, 'utf8'));
  }
  // A bare error code is an error like any other: error_page applies (nginx's special response).
  if (hasErrorPage(code)) return ex.respondError(code);
  ex.respondFull(code, headers, null);
}

/**
 * nginx (absolute_redirect on, its default) makes a relative redirect
 * absolute with the request's scheme, host (the server's first name with
 * server_name_in_redirect on) and port (left out with port_in_redirect off,
 * or when it is the scheme's default).
 */
export function absoluteLocation(ex: Exchange, url: string): string {
  if (!url.startsWith('/')) return url;
  const settings = ex.location?.settings ?? ex.server?.settings;
  if (settings !== undefined && !settings.absoluteRedirect) return url;
  const host = settings !== undefined && settings.serverNameInRedirect && ex.serverName !== '' ? ex.serverName : ex.host;
  if (settings !== undefined && !settings.portInRedirect) return `${ex.scheme}://${host}${url}`;
  const defaultPort = ex.scheme === 'https' ? 443 : 80;
  const port = ex.serverPort === defaultPort ? '' : ':' + ex.serverPort;
  return `${ex.scheme}://${host}${port}${url}`;
}
