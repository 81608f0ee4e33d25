/**
 * The request head fulcrum sends upstream. Built once per client request
 * (and reused by retries) as one latin1 string:
 *
 *   request line (URI per nginx's proxy_pass rules)
 *   headers fulcrum sets (proxy_set_header + defaults), empty values dropped
 *   client headers, minus hop-by-hop ones, those named in Connection, those
 *     proxy_set_header overrides, and (nginx) names with underscores
 *   X-Request-ID (kept from the client when valid)
 *   exactly one framing header, rebuilt: Content-Length or chunked
 *   Connection: keep-alive semantics for HTTP/1.1, or close
 */
import type { RequestHead } from '../http/request-head.js';
import type { ProxyRuntime } from '../runtime/table.js';
import { encodePath } from '../router/normalize.js';
import type { VariableContext } from '../variables/context.js';

export interface UpstreamRequestShape {
  /** Request body framing upstream: -1 none, -2 chunked, else Content-Length. */
  bodyLength: number;
  /** For upgrades: the Upgrade value to forward. */
  upgrade: string | undefined;
}

/**
 * nginx: the URI sent upstream (proxy_pass rules, https://nginx.org/r/proxy_pass).
 * After a rewrite (or an internal redirect) the changed URI goes as it is,
 * whatever URI part proxy_pass has, as nginx documents.
 */
export function upstreamUri(proxy: ProxyRuntime, head: RequestHead, uri: string, args: string, rewritten = false): string {
  if (rewritten) {
    const path = encodePath(uri);
    return args === '' ? path : path + '?' + args;
  }
  const replacement = proxy.uriReplacement;
  if (replacement === undefined) return head.path; // as the client sent it
  const rest = uri.startsWith(replacement.prefix) ? uri.slice(replacement.prefix.length) : uri;
  const path = encodePath(replacement.replacement + rest);
  return args === '' ? path : path + '?' + args;
}

export function buildUpstreamHead(
  proxy: ProxyRuntime,
  vars: VariableContext,
  uri: string,
  shape: UpstreamRequestShape,
  requestId: string,
  dropUnderscores: boolean,
): string {
  const head = vars.request;
  let out = head.method + ' ' + uri + (proxy.httpVersion === '1.1' ? ' HTTP/1.1\r\n' : ' HTTP/1.0\r\n');
  const ops = proxy.headerOps;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    const value = op.value.constant ?? op.value.expand(vars);
    // Connection and Upgrade are managed by fulcrum (keep-alive pools, upgrades).
    if (value === '' || op.lower === 'connection' || op.lower === 'upgrade') continue;
    out += op.name + ': ' + value + '\r\n';
  }
  // The client's header lines are copied in runs, as received, leaving out
  // hop-by-hop fields, those named in Connection, those proxy_set_header
  // replaces, X-Request-ID (set below) and, as nginx, names with underscores.
  const skip = proxy.skipRequestHeaders;
  const connectionTokens = head.connectionTokens;
  const { text, starts, colons } = head;
  let run = -1;
  for (let i = 0; i < head.count; i++) {
    const start = starts[i]!;
    const colon = colons[i]!;
    const dropped =
      skip.hasIgnoringCase(text, start, colon) ||
      head.nameIs(i, 'x-request-id') ||
      (connectionTokens !== null && connectionTokens.includes(head.name(i).toLowerCase())) ||
      (dropUnderscores && hasUnderscore(text, start, colon));
    if (!dropped) {
      if (run < 0) run = i;
    } else if (run >= 0) {
      out += head.linesText(run, i);
      run = -1;
    }
  }
  if (run >= 0) out += head.linesText(run, head.count);
  out += 'X-Request-ID: ' + requestId + '\r\n';
  if (shape.bodyLength >= 0) out += 'Content-Length: ' + shape.bodyLength + '\r\n';
  else if (shape.bodyLength === -2) out += 'Transfer-Encoding: chunked\r\n';
  if (shape.upgrade !== undefined) out += 'Connection: upgrade\r\nUpgrade: ' + shape.upgrade + '\r\n';
  else if (proxy.httpVersion === '1.0') out += 'Connection: close\r\n';
  return out + '\r\n';
}

function hasUnderscore(text: string, start: number, end: number): boolean {
  for (let k = start; k < end; k++) if (text.charCodeAt(k) === 0x5f /* _ */) return true;
  return false;
}
