/**
 * The short bodies fulcrum sends for errors it produces itself (400, 404,
 * 502, 504...). Like nginx's: the status and nothing about the internals.
 */
import { reasonPhrase } from '../http/status.js';

const cache = new Map<number, Buffer>();

export function errorPage(status: number): Buffer {
  let page = cache.get(status);
  if (page === undefined) {
    const title = `${status} ${reasonPhrase(status)}`;
    page = Buffer.from(`<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>fulcrum</center>\r\n</body>\r\n</html>\r\n`, 'latin1');
    cache.set(status, page);
  }
  return page;
}

/** Whether nginx would send its built-in page for `return CODE;` without text. */
export function hasErrorPage(status: number): boolean {
  return status >= 300 && status !== 304;
}
