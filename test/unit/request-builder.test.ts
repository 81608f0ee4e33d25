/**
 * buildUpstreamHead (src/proxy/request-builder.ts): the client's header lines
 * reach the upstream as received, in order, copied in runs; hop-by-hop
 * fields, fields named in Connection, fields proxy_set_header replaces,
 * X-Request-ID and (with underscores_in_headers off) names with underscores
 * are left out whatever their case and wherever they stand.
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http2';
import { test } from 'node:test';
import { NameSet } from '../../src/http/name-set.js';
import { RequestHead, parseRequestHead } from '../../src/http/request-head.js';
import { requestHeadFromH2 } from '../../src/listeners/http2-session.js';
import { buildUpstreamHead } from '../../src/proxy/request-builder.js';
import { HOP_BY_HOP_REQUEST } from '../../src/runtime/compile.js';
import type { ProxyRuntime } from '../../src/runtime/table.js';
import type { VariableContext } from '../../src/variables/context.js';

function proxy(setHeaders: Record<string, string>): ProxyRuntime {
  const headerOps = Object.entries(setHeaders).map(([name, value]) => ({ name, lower: name.toLowerCase(), value: { constant: value } }));
  return {
    httpVersion: '1.1',
    headerOps,
    skipRequestHeaders: new NameSet([...HOP_BY_HOP_REQUEST, ...headerOps.map((op) => op.lower)]),
  } as unknown as ProxyRuntime;
}

function upstreamHeadFor(head: RequestHead, dropUnderscores: boolean, setHeaders: Record<string, string> = { Host: 'backend' }): string[] {
  const text = buildUpstreamHead(proxy(setHeaders), { request: head } as VariableContext, head.path, { bodyLength: -1, upgrade: undefined }, 'rid', dropUnderscores);
  assert.ok(text.endsWith('\r\n\r\n'), 'the head ends with an empty line');
  return text.slice(0, -4).split('\r\n');
}

function parsed(...fields: string[]): RequestHead {
  const head = new RequestHead();
  assert.equal(parseRequestHead(['GET /a?b=1 HTTP/1.1', ...fields].join('\r\n'), head), 0, head.error);
  return head;
}

test('kept lines pass as received and in order; dropped ones go wherever they stand', () => {
  const head = parsed('CONNECTION: x-hop, keep-alive', 'Host: client', 'X-A:  one  ', 'x-hop: 1', 'X_Under: u', 'x-b:two', 'Keep-Alive: 5', 'x-request-id: client', 'X-C: three', 'TE: trailers');
  assert.deepEqual(upstreamHeadFor(head, true), [
    'GET /a?b=1 HTTP/1.1',
    'Host: backend',
    'X-A:  one  ',
    'x-b:two',
    'X-C: three',
    'X-Request-ID: rid',
  ]);
  assert.deepEqual(upstreamHeadFor(head, false).slice(2, 5), ['X-A:  one  ', 'X_Under: u', 'x-b:two'], 'underscores pass when allowed');
});

test('a head whose every client field is dropped, and one whose every field is kept', () => {
  assert.deepEqual(upstreamHeadFor(parsed('Host: a', 'Connection: close'), true), ['GET /a?b=1 HTTP/1.1', 'Host: backend', 'X-Request-ID: rid']);
  assert.deepEqual(upstreamHeadFor(parsed('Host: a', 'Accept: */*', 'User-Agent: t'), true, {}), ['GET /a?b=1 HTTP/1.1', 'Host: a', 'Accept: */*', 'User-Agent: t', 'X-Request-ID: rid']);
});

test('HTTP/2 requests: fields become header lines, :authority first as Host', () => {
  const headers = { ':method': 'GET', ':path': '/p', ':authority': 'Site.Example', accept: 'a', 'x-multi': ['c=1', 'd=2'] };
  const head = requestHeadFromH2(headers as unknown as IncomingHttpHeaders);
  assert.equal(head.error, '');
  assert.deepEqual([head.names, head.values], [['host', 'accept', 'x-multi', 'x-multi'], ['site.example', 'a', 'c=1', 'd=2']]);
  assert.equal(head.header('accept'), 'a');
  assert.equal(head.headerJoined('x-multi'), 'c=1, d=2');
  assert.deepEqual(upstreamHeadFor(head, true, {}), ['GET /p HTTP/1.1', 'host: site.example', 'accept: a', 'x-multi: c=1', 'x-multi: d=2', 'X-Request-ID: rid']);
});
