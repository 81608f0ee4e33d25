/**
 * nginx's stub_status: this process's connection and request counts in the
 * plain-text format monitoring tools parse (src/listeners/connection-counts.ts).
 */
import { stubStatusText } from '../listeners/connection-counts.js';
import type { Exchange } from '../proxy/exchange.js';

export function serveStubStatus(ex: Exchange): void {
  const method = ex.method;
  // As nginx's handler: anything but GET and HEAD is 405.
  if (method !== 'GET' && method !== 'HEAD') return ex.reject(405);
  const headers = ex.down.responseHeaders();
  headers.add('Content-Type', 'text/plain');
  ex.respondFull(200, headers, Buffer.from(stubStatusText(), 'latin1'));
}
