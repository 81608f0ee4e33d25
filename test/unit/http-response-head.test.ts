/**
 * parseResponseHead (src/http/response-head.ts): upstream responses. Anything
 * ambiguous is invalid, so the proxy answers 502 and drops that upstream
 * connection (RFC 9112 6.3), as nginx and HAProxy do.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ResponseHead, parseKeepAliveTimeout, parseResponseHead } from '../../src/http/response-head.js';

function parse(head: string, maxHeaders?: number): { ok: boolean; h: ResponseHead } {
  const h = new ResponseHead(maxHeaders);
  const ok = parseResponseHead(head, h);
  return { ok, h };
}

const res = (line: string, ...fields: string[]) => [line, ...fields].join('\r\n');
const ok200 = (...fields: string[]) => res('HTTP/1.1 200 OK', ...fields);

function expectInvalid(head: string, why?: RegExp): void {
  const { ok, h } = parse(head);
  assert.equal(ok, false, `${JSON.stringify(head)} was accepted`);
  assert.notEqual(h.error, '');
  if (why !== undefined) assert.match(h.error, why);
}

function expectValid(head: string): ResponseHead {
  const { ok, h } = parse(head);
  assert.equal(ok, true, `${JSON.stringify(head)}: ${h.error}`);
  assert.equal(h.error, '');
  return h;
}

describe('status line', () => {
  test('valid forms', () => {
    const cases: [string, number, number, string][] = [
      ['HTTP/1.1 200 OK', 1, 200, 'OK'],
      ['HTTP/1.0 404 Not Found', 0, 404, 'Not Found'],
      ['HTTP/1.1 204', 1, 204, ''],
      ['HTTP/1.1 200 ', 1, 200, ''],
      ['HTTP/1.1 599 Custom  Reason\twith tab', 1, 599, 'Custom  Reason\twith tab'],
      ['HTTP/1.1 200 caf\xe9', 1, 200, 'caf\xe9'],
      ['HTTP/1.1 100 Continue', 1, 100, 'Continue'],
      ['HTTP/1.1 101 Switching Protocols', 1, 101, 'Switching Protocols'],
      ['HTTP/1.1 103 Early Hints', 1, 103, 'Early Hints'],
      ['HTTP/1.1 999 Whatever', 1, 999, 'Whatever'],
    ];
    for (const [line, minor, status, reason] of cases) {
      const h = expectValid(line);
      assert.deepEqual([h.versionMinor, h.status, h.reason], [minor, status, reason], line);
    }
  });

  test('invalid forms', () => {
    for (const line of [
      '', 'HTTP/1.1', 'HTTP/1.1 ', 'HTTP/1.1 99 Too Small', 'HTTP/1.1 099 Leading Zero', 'HTTP/1.1 1000 Too Big', 'HTTP/1.1 20 OK', 'HTTP/1.1 2OO OK',
      'HTTP/1.1 200OK', 'HTTP/1.1  200 OK', ' HTTP/1.1 200 OK', 'HTTP/2 200 OK', 'HTTP/2.0 200 OK', 'HTTP/1.2 200 OK', 'HTTP/0.9 200 OK',
      'http/1.1 200 OK', 'ICY 200 OK', 'HTTP/1.1 200 OK\x7f', 'HTTP/1.1\t200 OK',
    ]) {
      expectInvalid(line);
    }
  });
});

describe('framing', () => {
  test('Content-Length and chunked are read', () => {
    assert.equal(expectValid(ok200('Content-Length: 42')).contentLength, 42);
    assert.equal(expectValid(ok200('Content-Length: 0')).contentLength, 0);
    assert.equal(expectValid(ok200('Content-Length:  7 ')).contentLength, 7);
    const h = expectValid(ok200('Transfer-Encoding: Chunked'));
    assert.equal(h.chunked, true);
    assert.equal(h.contentLength, -1);
    const none = expectValid(ok200());
    assert.deepEqual([none.chunked, none.contentLength], [false, -1], 'no framing: read until close');
  });

  test('ambiguous framing is invalid', () => {
    const cases: [string, RegExp][] = [
      [ok200('Transfer-Encoding: chunked, chunked'), /Transfer-Encoding/],
      [ok200('Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'), /Transfer-Encoding/],
      [ok200('Transfer-Encoding: gzip, chunked'), /Transfer-Encoding/],
      [ok200('Transfer-Encoding: identity'), /Transfer-Encoding/],
      [ok200('Transfer-Encoding: chunked,'), /Transfer-Encoding/],
      [ok200('Content-Length: 5', 'Transfer-Encoding: chunked'), /both/],
      [ok200('Transfer-Encoding: chunked', 'Content-Length: 5'), /both/],
      [ok200('Content-Length: 5', 'Content-Length: 5'), /duplicate/],
      [ok200('Content-Length: 5', 'content-length: 6'), /duplicate/],
      [ok200('Content-Length: 5, 5'), /Content-Length/],
      [ok200('Content-Length: +5'), /Content-Length/],
      [ok200('Content-Length: -1'), /Content-Length/],
      [ok200('Content-Length: 0x5'), /Content-Length/],
      [ok200('Content-Length:'), /Content-Length/],
      [ok200('Content-Length: 18446744073709551616'), /Content-Length/],
    ];
    for (const [head, why] of cases) expectInvalid(head, why);
  });

  test('204 and 1xx never carry a body', () => {
    expectInvalid(res('HTTP/1.1 204 No Content', 'Content-Length: 5'), /204/);
    expectInvalid(res('HTTP/1.1 204 No Content', 'Transfer-Encoding: chunked'), /204/);
    expectInvalid(res('HTTP/1.1 100 Continue', 'Content-Length: 1'), /100/);
    expectInvalid(res('HTTP/1.1 103 Early Hints', 'Transfer-Encoding: chunked'), /103/);
    assert.equal(expectValid(res('HTTP/1.1 204 No Content', 'Content-Length: 0')).contentLength, 0);
    expectValid(res('HTTP/1.1 204 No Content'));
  });

  test('304 may carry the Content-Length (and Transfer-Encoding) of the representation', () => {
    assert.equal(expectValid(res('HTTP/1.1 304 Not Modified', 'Content-Length: 1234')).contentLength, 1234);
    assert.equal(expectValid(res('HTTP/1.1 304 Not Modified', 'Transfer-Encoding: chunked')).chunked, true);
  });
});

describe('connection management', () => {
  test('Keep-Alive: timeout=N gives the hint in ms', () => {
    assert.equal(expectValid(ok200('Keep-Alive: timeout=5')).keepAliveTimeoutMs, 5000);
    assert.equal(expectValid(ok200('Keep-Alive: timeout=5, max=100')).keepAliveTimeoutMs, 5000);
    assert.equal(expectValid(ok200('Keep-Alive: max=100, Timeout=2')).keepAliveTimeoutMs, 2000);
    assert.equal(expectValid(ok200('Keep-Alive: max=100')).keepAliveTimeoutMs, -1);
    assert.equal(expectValid(ok200()).keepAliveTimeoutMs, -1);
  });

  test('parseKeepAliveTimeout', () => {
    const cases: [string, number][] = [
      ['timeout=5', 5000], ['timeout=0', 0], [' timeout=15 ', 15000], ['timeout=999999', 999999000], ['timeout=1000000', -1], ['timeout=', -1],
      ['timeout=abc', -1], ['timeout=-1', -1], ['timeout=1.5', -1], ['timeout = 5', -1], ['max=5', -1], ['', -1], ['x, timeout=3', 3000],
    ];
    for (const [value, ms] of cases) assert.equal(parseKeepAliveTimeout(value), ms, JSON.stringify(value));
  });

  test('keepAlive for HTTP/1.0 and HTTP/1.1', () => {
    const cases: [string, string[], boolean][] = [
      ['HTTP/1.1 200 OK', [], true],
      ['HTTP/1.1 200 OK', ['Connection: close'], false],
      ['HTTP/1.1 200 OK', ['Connection: Close'], false],
      ['HTTP/1.1 200 OK', ['Connection: keep-alive'], true],
      ['HTTP/1.1 200 OK', ['Connection: x-foo, close'], false],
      ['HTTP/1.0 200 OK', [], false],
      ['HTTP/1.0 200 OK', ['Connection: keep-alive'], true],
      ['HTTP/1.0 200 OK', ['Connection: Keep-Alive'], true],
      ['HTTP/1.0 200 OK', ['Connection: keep-alive, close'], false],
      ['HTTP/1.0 200 OK', ['Connection: close'], false],
    ];
    for (const [line, fields, keep] of cases) assert.equal(expectValid(res(line, ...fields)).keepAlive, keep, `${line} ${fields.join(' | ')}`);
  });

  test('Connection tokens: flags and the other names, lowercase', () => {
    const h = expectValid(res('HTTP/1.1 101 Switching Protocols', 'Connection: Upgrade, X-Hop', 'Upgrade: websocket', 'connection: KEEP-ALIVE,,TE'));
    assert.equal(h.connectionUpgrade, true);
    assert.equal(h.connectionKeepAlive, true);
    assert.equal(h.connectionClose, false);
    assert.deepEqual(h.connectionTokens, ['x-hop', 'te']);
    assert.equal(h.header('upgrade'), 'websocket');
  });
});

describe('field syntax', () => {
  test('invalid names and values', () => {
    for (const field of [
      'X Y: v', ' X: v', 'X : v', 'X\t: v', ': v', 'no-colon', 'X\0: v', 'X\xe9: v', 'X(: v', 'X: \x01', 'X: a\0b', 'X: a\x7f', 'X: a\x0bb', 'X: a\rb', 'X: a\nb',
    ]) {
      expectInvalid(ok200('Date: today', field));
    }
    expectInvalid('HTTP/1.1 200 OK\nX: v', /bare/);
    expectInvalid(ok200('X: a', '\tfolded'));
  });

  test('valid odd fields', () => {
    const h = expectValid(ok200('X-Empty:', 'X-Obs: caf\xe9', 'X-Tab:\ta\tb\t', "!#$%&'*+-.^_`|~: v"));
    assert.deepEqual(h.values, ['', 'caf\xe9', 'a\tb', 'v']);
    assert.deepEqual(h.lower, ['x-empty', 'x-obs', 'x-tab', "!#$%&'*+-.^_`|~"]);
    assert.equal(h.header('x-obs'), 'caf\xe9');
    assert.equal(h.header('X-Obs'), undefined, 'lookups take lowercase names');
  });

  test('maxHeaders', () => {
    const fields = Array.from({ length: 5 }, (_, i) => `X-${i}: ${i}`);
    assert.equal(parse(ok200(...fields), 5).ok, true);
    const r = parse(ok200(...fields, 'X-5: 5'), 5);
    assert.equal(r.ok, false);
    assert.match(r.h.error, /too many/);
  });

  test('reset() makes a ResponseHead reusable', () => {
    const h = new ResponseHead();
    assert.equal(parseResponseHead(res('HTTP/1.0 201 Created', 'Transfer-Encoding: chunked', 'Connection: close, x', 'Keep-Alive: timeout=3'), h), true);
    h.reset();
    assert.equal(parseResponseHead(res('HTTP/1.1 200 OK', 'Content-Length: 1'), h), true);
    assert.deepEqual([h.versionMinor, h.status, h.reason, h.chunked, h.contentLength, h.connectionClose, h.connectionTokens, h.keepAliveTimeoutMs], [1, 200, 'OK', false, 1, false, null, -1]);
    assert.deepEqual(h.names, ['Content-Length']);
  });
});

describe('header lines kept as positions', () => {
  test('name(), value(), nameIs() and header() read the head text', () => {
    const h = expectValid(ok200('Content-LENGTH:  5 ', 'X-A:b', 'x-a: second'));
    assert.equal(h.count, 3);
    assert.deepEqual([h.name(0), h.value(0), h.name(1), h.value(1)], ['Content-LENGTH', '5', 'X-A', 'b']);
    assert.equal(h.nameIs(0, 'content-length'), true);
    assert.equal(h.nameIs(1, 'x-b'), false);
    assert.equal(h.header('x-a'), 'b', 'the first of repeated fields');
    assert.equal(h.contentLength, 5);
    assert.equal(h.text.slice(h.starts[2]!, h.ends[2]!), 'x-a: second');
  });
});
