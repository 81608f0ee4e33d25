/**
 * parseRequestHead (src/http/request-head.ts) against RFC 9112 / RFC 9110 and
 * the request-smuggling forms. Heads are given as Http1Connection passes
 * them: latin1 text without the final CRLFCRLF and without leading CRLFs.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_HEAD_LIMITS, RequestHead, findHeadEnd, incompleteHeadIsInvalid, parseRequestHead, type HeadLimits } from '../../src/http/request-head.js';

function parse(head: string, limits?: HeadLimits): { status: number; h: RequestHead } {
  const h = new RequestHead();
  const status = parseRequestHead(head, h, limits);
  return { status, h };
}

/** A request head from a request line and header lines. */
const req = (line: string, ...fields: string[]) => [line, ...fields].join('\r\n');
const get11 = (...fields: string[]) => req('GET / HTTP/1.1', 'Host: a.example', ...fields);
const post11 = (...fields: string[]) => req('POST /upload HTTP/1.1', 'Host: a.example', ...fields);

type Row = [name: string, head: string, status: number];

function table(rows: Row[]): void {
  for (const [name, head, status] of rows) {
    test(`${name} -> ${status === 0 ? 'accepted' : status}`, () => {
      const r = parse(head);
      assert.equal(r.status, status, `${JSON.stringify(head)}: ${r.h.error}`);
      if (status !== 0) assert.notEqual(r.h.error, '', 'a rejection says why');
      else assert.equal(r.h.error, '');
    });
  }
}

describe('baseline', () => {
  test('a minimal HTTP/1.1 request', () => {
    const { status, h } = parse(get11());
    assert.equal(status, 0);
    assert.equal(h.method, 'GET');
    assert.equal(h.target, '/');
    assert.equal(h.path, '/');
    assert.equal(h.versionMinor, 1);
    assert.equal(h.host, 'a.example');
    assert.equal(h.contentLength, -1);
    assert.equal(h.chunked, false);
    assert.equal(h.hasBody, false);
    assert.deepEqual(h.names, ['Host']);
  });

  test('origin-form target with a query is kept as received', () => {
    const { status, h } = parse(req('GET /a/b%20c?x=1&y=%2F HTTP/1.1', 'Host: a.example'));
    assert.equal(status, 0);
    assert.equal(h.target, '/a/b%20c?x=1&y=%2F');
    assert.equal(h.path, '/a/b%20c?x=1&y=%2F');
  });

  test('every method llhttp knows except CONNECT and TRACE is accepted', () => {
    for (const m of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'PROPFIND', 'M-SEARCH', 'PURGE', 'QUERY', 'MKCALENDAR', 'UNSUBSCRIBE']) {
      assert.equal(parse(req(`${m} / HTTP/1.1`, 'Host: a')).status, 0, m);
    }
  });

  test('header names keep their case; lower has the lowercase forms; values are OWS-trimmed', () => {
    const { status, h } = parse(get11('X-Thing:   spaced value \t', 'x-empty:', 'X-Tab:\tv'));
    assert.equal(status, 0);
    assert.deepEqual(h.names, ['Host', 'X-Thing', 'x-empty', 'X-Tab']);
    assert.deepEqual(h.lower, ['host', 'x-thing', 'x-empty', 'x-tab']);
    assert.deepEqual(h.values, ['a.example', 'spaced value', '', 'v']);
  });

  test('obs-text (0x80-0xFF) is allowed in field values', () => {
    const { status, h } = parse(get11('X-Latin: caf\xe9 \xff'));
    assert.equal(status, 0);
    assert.equal(h.header('x-latin'), 'caf\xe9 \xff');
  });
});

describe('Content-Length / Transfer-Encoding (request smuggling)', () => {
  table([
    ['CL then TE', post11('Content-Length: 3', 'Transfer-Encoding: chunked'), 400],
    ['TE then CL', post11('Transfer-Encoding: chunked', 'Content-Length: 3'), 400],
    ['TE then CL: 0', post11('Transfer-Encoding: chunked', 'Content-Length: 0'), 400],
    ['duplicate CL, equal', post11('Content-Length: 3', 'Content-Length: 3'), 400],
    ['duplicate CL, different', post11('Content-Length: 3', 'Content-Length: 4'), 400],
    ['duplicate CL, names in different case', post11('Content-Length: 3', 'content-length: 3'), 400],
    ['CL list "3, 3"', post11('Content-Length: 3, 3'), 400],
    ['CL list "3,3"', post11('Content-Length: 3,3'), 400],
    ['CL "+3"', post11('Content-Length: +3'), 400],
    ['CL "0x3"', post11('Content-Length: 0x3'), 400],
    ['CL "-1"', post11('Content-Length: -1'), 400],
    ['CL empty', post11('Content-Length:'), 400],
    ['CL only whitespace', post11('Content-Length:  '), 400],
    ['CL "3 3"', post11('Content-Length: 3 3'), 400],
    ['CL "3.0"', post11('Content-Length: 3.0'), 400],
    ['CL quoted', post11('Content-Length: "3"'), 400],
    ['CL above 2^64', post11('Content-Length: 18446744073709551616'), 400],
    ['CL 20 digits', post11('Content-Length: 99999999999999999999'), 400],
    ['CL above 2^53', post11('Content-Length: 9007199254740993'), 400],
    ['CL with a trailing HTAB (llhttp refuses it)', post11('Content-Length: 3\t'), 400],
    ['CL with trailing SP then HTAB', post11('Content-Length: 3 \t'), 400],
    ['CL with a VT', post11('Content-Length: 3\x0b'), 400],
    ['TE "gzip, chunked"', post11('Transfer-Encoding: gzip, chunked'), 400],
    ['TE ",chunked"', post11('Transfer-Encoding: ,chunked'), 400],
    ['TE "chunked,"', post11('Transfer-Encoding: chunked,'), 400],
    ['TE "identity"', post11('Transfer-Encoding: identity'), 400],
    ['TE "chunked, chunked"', post11('Transfer-Encoding: chunked, chunked'), 400],
    ['TE "chunked, identity"', post11('Transfer-Encoding: chunked, identity'), 400],
    ['TE "xchunked"', post11('Transfer-Encoding: xchunked'), 400],
    ['TE "chunked;q=1"', post11('Transfer-Encoding: chunked;q=1'), 400],
    ['TE quoted', post11('Transfer-Encoding: "chunked"'), 400],
    ['TE empty', post11('Transfer-Encoding:'), 400],
    ['TE with a trailing HTAB (llhttp refuses it)', post11('Transfer-Encoding: chunked\t'), 400],
    ['TE sent twice', post11('Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'), 400],
    ['TE on HTTP/1.0', req('POST / HTTP/1.0', 'Transfer-Encoding: chunked'), 400],
    ['Content_Length is just another field', post11('Content_Length: 3'), 0],
  ]);

  test('a valid Content-Length, with OWS around it and leading zeros', () => {
    for (const [value, n] of [['3', 3], [' 3 ', 3], ['\t3', 3], ['003', 3], ['0', 0], ['9007199254740991', 9007199254740991]] as const) {
      const { status, h } = parse(post11(`Content-Length:${value}`));
      assert.equal(status, 0, JSON.stringify(value));
      assert.equal(h.contentLength, n);
      assert.equal(h.hasBody, n > 0);
      assert.equal(h.chunked, false);
    }
  });

  test('Transfer-Encoding: chunked in any case, with SP around it', () => {
    for (const value of ['chunked', 'Chunked', 'CHUNKED', ' chunked ', '\tchunked']) {
      const { status, h } = parse(post11(`Transfer-Encoding:${value}`));
      assert.equal(status, 0, JSON.stringify(value));
      assert.equal(h.chunked, true);
      assert.equal(h.hasBody, true);
      assert.equal(h.contentLength, -1);
    }
  });
});

describe('field syntax', () => {
  table([
    ['obs-fold: a line starting with SP', get11('X-A: one', ' two'), 400],
    ['obs-fold: a line starting with HTAB', get11('X-A: one', '\ttwo'), 400],
    ['obs-fold on the first field line', req('GET / HTTP/1.1', ' Host: a.example'), 400],
    ['space before the colon', req('GET / HTTP/1.1', 'Host : a.example'), 400],
    ['HTAB before the colon', req('GET / HTTP/1.1', 'Host\t: a.example'), 400],
    ['space before the colon of Content-Length', post11('Content-Length : 3'), 400],
    ['space inside a name', get11('X A: v'), 400],
    ['line without a colon', get11('no-colon'), 400],
    ['empty name', get11(': v'), 400],
    ['bare LF ending the request line', 'GET / HTTP/1.1\nHost: a.example', 400],
    ['bare LF between fields', get11('X-A: 1\nX-B: 2'), 400],
    ['bare LF inside a value', get11('X-A: a\nb'), 400],
    ['bare CR inside a value', get11('X-A: a\rb'), 400],
    ['bare CR ending a field', get11('X-A: a\rX-B: b'), 400],
    ['CR at the very end of the head', get11('X-A: a\r'), 400],
    ['NUL in a name', get11('X\0A: v'), 400],
    ['NUL in a value', get11('X-A: a\0b'), 400],
    ['NUL in the target', 'GET /a\0b HTTP/1.1\r\nHost: a', 400],
    ['SOH in a value', get11('X-A: \x01'), 400],
    ['VT in a value', get11('X-A: a\x0bb'), 400],
    ['FF in a value', get11('X-A: a\x0cb'), 400],
    ['ESC in a value', get11('X-A: \x1b[0m'), 400],
    ['US in a value', get11('X-A: \x1f'), 400],
    ['DEL in a value', get11('X-A: a\x7fb'), 400],
    ['DEL in a name', get11('X\x7f: v'), 400],
    ['obs-text in a name', get11('X\xe9: v'), 400],
    ['separator in a name', get11('X(A): v'), 400],
    ['empty value is fine', get11('X-Empty:'), 0],
    ['HTAB inside a value is fine', get11('X-A: a\tb'), 0],
    ['all tchar in a name', get11("!#$%&'*+-.^_`|~09AZaz: v"), 0],
  ]);
});

describe('Host (RFC 9112 3.2)', () => {
  table([
    ['two Host fields, equal', req('GET / HTTP/1.1', 'Host: a.example', 'Host: a.example'), 400],
    ['two Host fields, different', req('GET / HTTP/1.1', 'Host: a.example', 'host: b.example'), 400],
    ['Host with userinfo', req('GET / HTTP/1.1', 'Host: a@b'), 400],
    ['Host with a path', req('GET / HTTP/1.1', 'Host: a/b'), 400],
    ['Host with a space', req('GET / HTTP/1.1', 'Host: a b'), 400],
    ['Host ".."', req('GET / HTTP/1.1', 'Host: ..'), 400],
    ['Host with ".." inside', req('GET / HTTP/1.1', 'Host: a..example'), 400],
    ['Host with two colons', req('GET / HTTP/1.1', 'Host: a:b:c'), 400],
    ['Host with a six-digit port', req('GET / HTTP/1.1', 'Host: a:123456'), 400],
    ['Host with an unclosed IP-literal', req('GET / HTTP/1.1', 'Host: [::1'), 400],
    ['Host with obs-text', req('GET / HTTP/1.1', 'Host: caf\xe9'), 400],
    ['missing Host on HTTP/1.1', req('GET / HTTP/1.1'), 400],
    ['missing Host on HTTP/1.1 with an absolute-form target', req('GET http://a.example/ HTTP/1.1'), 400],
    ['missing Host on HTTP/1.0', req('GET / HTTP/1.0'), 0],
    ['empty Host (allowed by RFC 9110 7.2)', req('GET / HTTP/1.1', 'Host:'), 0],
  ]);

  test('valid Host values are lowercased for routing', () => {
    for (const [value, host] of [['a.example', 'a.example'], ['A.Example:8080', 'a.example:8080'], ['127.0.0.1', '127.0.0.1'], ['[::1]:443', '[::1]:443'], ['xn--bcher-kva.example', 'xn--bcher-kva.example'], ['a.example:', 'a.example:']]) {
      const { status, h } = parse(req('GET / HTTP/1.1', `Host: ${value}`));
      assert.equal(status, 0, value);
      assert.equal(h.host, host);
      assert.equal(h.header('host'), value, 'the field value itself is kept as sent');
    }
  });

  test('HTTP/1.0 without Host has no host', () => {
    const { status, h } = parse(req('GET / HTTP/1.0'));
    assert.equal(status, 0);
    assert.equal(h.host, undefined);
    assert.equal(h.versionMinor, 0);
  });
});

describe('request target (RFC 9112 3.2)', () => {
  test('an absolute-form target wins over Host (RFC 9112 3.2.2)', () => {
    const { status, h } = parse(req('GET http://a.example/x HTTP/1.1', 'Host: b.example'));
    assert.equal(status, 0);
    assert.equal(h.host, 'a.example');
    assert.equal(h.path, '/x');
    assert.equal(h.target, 'http://a.example/x');
  });

  test('absolute-form variants', () => {
    for (const [target, host, path] of [
      ['http://a.example', 'a.example', '/'],
      ['http://a.example?q=1', 'a.example', '/?q=1'],
      ['https://A.Example:8443/p/q?r', 'a.example:8443', '/p/q?r'],
      ['HTTP://a.example/', 'a.example', '/'],
      ['http://[::1]:80/x', '[::1]:80', '/x'],
    ]) {
      const { status, h } = parse(req(`GET ${target} HTTP/1.1`, 'Host: other.example'));
      assert.equal(status, 0, target);
      assert.equal(h.host, host, target);
      assert.equal(h.path, path, target);
    }
  });

  table([
    ['asterisk-form GET *', req('GET * HTTP/1.1', 'Host: a'), 400],
    ['asterisk-form OPTIONS * (not supported either)', req('OPTIONS * HTTP/1.1', 'Host: a'), 400],
    ['fragment in an origin-form target', req('GET /a#frag HTTP/1.1', 'Host: a'), 400],
    ['empty fragment', req('GET /a# HTTP/1.1', 'Host: a'), 400],
    ['fragment in an absolute-form target', req('GET http://a.example/#f HTTP/1.1', 'Host: a'), 400],
    ['absolute-form with userinfo', req('GET http://u@a.example/ HTTP/1.1', 'Host: a'), 400],
    ['absolute-form with an empty authority', req('GET http:///x HTTP/1.1', 'Host: a'), 400],
    ['absolute-form with ".." in the authority', req('GET http://a..b/ HTTP/1.1', 'Host: a'), 400],
    ['absolute-form with another scheme', req('GET ftp://a.example/ HTTP/1.1', 'Host: a'), 400],
    ['relative target', req('GET a/b HTTP/1.1', 'Host: a'), 400],
    ['authority-form on GET', req('GET a.example:443 HTTP/1.1', 'Host: a'), 400],
    ['space in the target', req('GET /a b HTTP/1.1', 'Host: a'), 400],
    ['HTAB in the target', req('GET /a\tb HTTP/1.1', 'Host: a'), 400],
    ['obs-text in the target', req('GET /caf\xe9 HTTP/1.1', 'Host: a'), 400],
    ['characters llhttp allows in a path', req('GET /a"<>^`{|}[]@!$&\'()*+,;=:~ HTTP/1.1', 'Host: a'), 0],
    // llhttp accepts a backslash; WHATWG-URL backends read it as "/", so /api/..\admin could leave its location.
    ['a backslash in the target', req('GET /api/..\\admin HTTP/1.1', 'Host: a'), 400],
  ]);
});

describe('request line, version and method', () => {
  table([
    ['HTTP/0.9 form (no version)', 'GET /', 400],
    ['HTTP/0.9 form with a Host field', 'GET /\r\nHost: a', 400],
    ['HTTP/2.0 version', req('GET / HTTP/2.0', 'Host: a'), 505],
    ['HTTP/1.2 version', req('GET / HTTP/1.2', 'Host: a'), 505],
    ['HTTP/0.9 version', req('GET / HTTP/0.9', 'Host: a'), 505],
    ['HTTP/3.0 version', req('GET / HTTP/3.0', 'Host: a'), 505],
    ['HTTP/3 version (not a version at all)', req('GET / HTTP/3', 'Host: a'), 400],
    ['HTTP/11 version', req('GET / HTTP/11', 'Host: a'), 400],
    ['lowercase http/1.1', req('GET / http/1.1', 'Host: a'), 400],
    ['two spaces after the method', req('GET  / HTTP/1.1', 'Host: a'), 400],
    ['trailing space after the version', req('GET / HTTP/1.1 ', 'Host: a'), 400],
    ['leading space before the method', req(' GET / HTTP/1.1', 'Host: a'), 400],
    ['HTAB between method and target', req('GET\t/ HTTP/1.1', 'Host: a'), 400],
    ['empty request line', req('', 'Host: a'), 400],
    ['empty head', '', 400],
    ['CONNECT', req('CONNECT a.example:443 HTTP/1.1', 'Host: a.example:443'), 405],
    ['TRACE', req('TRACE / HTTP/1.1', 'Host: a'), 405],
    ['unknown method', req('FOO / HTTP/1.1', 'Host: a'), 501],
    ['lowercase method', req('get / HTTP/1.1', 'Host: a'), 501],
    ['RTSP method', req('DESCRIBE / HTTP/1.1', 'Host: a'), 501],
    ['method that is not a token', req('G@T / HTTP/1.1', 'Host: a'), 400],
    ['HTTP/1.0', req('GET / HTTP/1.0'), 0],
  ]);

  test('version checks come before method checks (a 505 for FOO over HTTP/2.0)', () => {
    assert.equal(parse(req('FOO / HTTP/2.0', 'Host: a')).status, 505);
  });
});

describe('Expect, Connection, Upgrade', () => {
  test('Expect: 100-continue sets the flag, in any case', () => {
    for (const v of ['100-continue', '100-Continue', ' 100-CONTINUE ']) {
      const { status, h } = parse(post11('Content-Length: 3', `Expect:${v}`));
      assert.equal(status, 0, v);
      assert.equal(h.expectContinue, true);
    }
    assert.equal(parse(post11('Content-Length: 3')).h.expectContinue, false);
  });

  test('any other expectation is a 417', () => {
    for (const v of ['foo', '100-continue, foo', '']) assert.equal(parse(get11(`Expect: ${v}`)).status, 417, v);
  });

  test('Connection: close / keep-alive / upgrade set flags; other tokens are collected lowercase', () => {
    const { status, h } = parse(get11('Connection: Close, X-Foo, Keep-Alive', 'connection: UPGRADE, te,, x-bar', 'Upgrade: websocket'));
    assert.equal(status, 0);
    assert.equal(h.connectionClose, true);
    assert.equal(h.connectionKeepAlive, true);
    assert.equal(h.connectionUpgrade, true);
    assert.deepEqual(h.connectionTokens, ['x-foo', 'te', 'x-bar']);
    assert.equal(h.upgrade, 'websocket');
  });

  test('no Connection field: no flags, no tokens', () => {
    const { h } = parse(get11());
    assert.equal(h.connectionClose || h.connectionKeepAlive || h.connectionUpgrade, false);
    assert.equal(h.connectionTokens, null);
    assert.equal(h.upgrade, undefined);
  });

  test('Connection tokens are matched whole ("closed", "close x" are not close)', () => {
    for (const v of ['closed', 'close x', '"close"', 'close;q=1']) {
      const { h } = parse(get11(`Connection: ${v}`));
      assert.equal(h.connectionClose, false, v);
    }
  });

  test('keep-alive followed by HTAB is not keep-alive (llhttp does not see it either)', () => {
    for (const v of ['keep-alive\t', 'keep-alive\t, x', 'keep-alive \t']) {
      const { status, h } = parse(req('GET / HTTP/1.0', `Connection: ${v}`));
      assert.equal(status, 0);
      assert.equal(h.connectionKeepAlive, false, JSON.stringify(v));
      assert.equal(h.wantsKeepAlive, false);
    }
    assert.equal(parse(req('GET / HTTP/1.0', 'Connection:\tkeep-alive ')).h.connectionKeepAlive, true);
  });

  test('wantsKeepAlive for HTTP/1.0 and HTTP/1.1', () => {
    const cases: [string, string[], boolean][] = [
      ['GET / HTTP/1.1', ['Host: a'], true],
      ['GET / HTTP/1.1', ['Host: a', 'Connection: close'], false],
      ['GET / HTTP/1.1', ['Host: a', 'Connection: keep-alive'], true],
      ['GET / HTTP/1.1', ['Host: a', 'Connection: x-foo, close'], false],
      ['GET / HTTP/1.1', ['Host: a', 'Connection: keep-alive', 'Connection: close'], false],
      ['GET / HTTP/1.0', [], false],
      ['GET / HTTP/1.0', ['Connection: keep-alive'], true],
      ['GET / HTTP/1.0', ['Connection: Keep-Alive'], true],
      ['GET / HTTP/1.0', ['Connection: close'], false],
      // As llhttp's should_keep_alive: on HTTP/1.0 only the keep-alive token counts.
      ['GET / HTTP/1.0', ['Connection: keep-alive, close'], true],
    ];
    for (const [line, fields, keep] of cases) {
      const { status, h } = parse(req(line, ...fields));
      assert.equal(status, 0);
      assert.equal(h.wantsKeepAlive, keep, `${line} ${fields.join(' | ')}`);
    }
  });
});

describe('limits', () => {
  const limits: HeadLimits = { maxLineBytes: 64, maxHeadBytes: 256, maxHeaders: 4 };

  test('request line longer than maxLineBytes -> 414, at the limit -> accepted', () => {
    const line = (n: number) => `GET /${'a'.repeat(n - 'GET / HTTP/1.1'.length)} HTTP/1.1`;
    assert.equal(line(64).length, 64);
    assert.equal(parse(req(line(64), 'Host: a'), limits).status, 0);
    assert.equal(parse(req(line(65), 'Host: a'), limits).status, 414);
  });

  test('a request line over both limits is still a 414', () => {
    assert.equal(parse(req(`GET /${'a'.repeat(300)} HTTP/1.1`, 'Host: a'), limits).status, 414);
    assert.equal(parse(req(`GET /${'a'.repeat(40000)} HTTP/1.1`, 'Host: a')).status, 414);
  });

  test('header line longer than maxLineBytes -> 431, at the limit -> accepted', () => {
    const field = (n: number) => `X-Long: ${'v'.repeat(n - 'X-Long: '.length)}`;
    assert.equal(parse(req('GET / HTTP/1.1', 'Host: a', field(64)), limits).status, 0);
    const r = parse(req('GET / HTTP/1.1', 'Host: a', field(65)), limits);
    assert.equal(r.status, 431);
    assert.match(r.h.error, /header line too long/);
  });

  test('whole head larger than maxHeadBytes -> 431', () => {
    const wide = { ...limits, maxHeaders: 10 };
    const fields = Array.from({ length: 4 }, (_, i) => `X-${i}: ${'v'.repeat(55)}`);
    const fits = req('GET / HTTP/1.1', 'Host: a', ...fields.slice(0, 3));
    const tooBig = req('GET / HTTP/1.1', 'Host: a', ...fields);
    assert.ok(fits.length <= 256 && tooBig.length > 256);
    assert.equal(parse(fits, wide).status, 0);
    const r = parse(tooBig, wide);
    assert.equal(r.status, 431);
    assert.match(r.h.error, /too large/);
  });

  test('more than maxHeaders fields -> 431, exactly maxHeaders -> accepted', () => {
    assert.equal(parse(req('GET / HTTP/1.1', 'Host: a', 'A: 1', 'B: 2', 'C: 3'), limits).status, 0);
    const r = parse(req('GET / HTTP/1.1', 'Host: a', 'A: 1', 'B: 2', 'C: 3', 'D: 4'), limits);
    assert.equal(r.status, 431);
    assert.match(r.h.error, /too many/);
  });

  test('the defaults are nginx-like', () => {
    assert.deepEqual(DEFAULT_HEAD_LIMITS, { maxLineBytes: 8192, maxHeadBytes: 32768, maxHeaders: 100 });
    assert.equal(parse(req(`GET /${'a'.repeat(8200)} HTTP/1.1`, 'Host: a')).status, 414);
    assert.equal(parse(req('GET / HTTP/1.1', 'Host: a', ...Array.from({ length: 100 }, (_, i) => `X-${i}: 1`))).status, 431);
  });
});

describe('RequestHead accessors', () => {
  test('header() returns the first value by lowercase name; headerJoined() joins all with ", "', () => {
    const { status, h } = parse(get11('Accept: text/html', 'X-Forwarded-For: 10.0.0.1', 'accept: application/json', 'Cookie: a=1', 'Cookie: b=2'));
    assert.equal(status, 0);
    assert.equal(h.header('accept'), 'text/html');
    assert.equal(h.header('x-forwarded-for'), '10.0.0.1');
    assert.equal(h.header('Accept'), undefined, 'lookups take lowercase names');
    assert.equal(h.header('missing'), undefined);
    assert.equal(h.headerJoined('accept'), 'text/html, application/json');
    assert.equal(h.headerJoined('cookie'), 'a=1, b=2');
    assert.equal(h.headerJoined('host'), 'a.example');
    assert.equal(h.headerJoined('missing'), undefined);
  });

  test('reset() makes a RequestHead reusable across requests', () => {
    const h = new RequestHead();
    assert.equal(parseRequestHead(req('POST http://a.example/x HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked', 'Connection: close, x-y', 'Expect: 100-continue', 'Upgrade: foo'), h), 0);
    h.reset();
    assert.equal(parseRequestHead(req('GET /y HTTP/1.0'), h), 0);
    assert.equal(h.method, 'GET');
    assert.equal(h.path, '/y');
    assert.equal(h.versionMinor, 0);
    assert.equal(h.host, undefined);
    assert.equal(h.chunked, false);
    assert.equal(h.contentLength, -1);
    assert.equal(h.connectionClose, false);
    assert.equal(h.connectionTokens, null);
    assert.equal(h.expectContinue, false);
    assert.equal(h.upgrade, undefined);
    assert.deepEqual(h.names, []);
    assert.equal(h.error, '');
  });
});

describe('findHeadEnd', () => {
  const B = (s: string) => Buffer.from(s, 'latin1');

  test('returns the index just past CRLFCRLF, or -1', () => {
    assert.equal(findHeadEnd(B('GET / HTTP/1.1\r\nHost: a\r\n\r\nbody'), 0), 27);
    assert.equal(findHeadEnd(B('GET / HTTP/1.1\r\nHost: a\r\n'), 0), -1);
    assert.equal(findHeadEnd(B('GET / HTTP/1.1\r\nHost: a\r\n\r'), 0), -1);
    assert.equal(findHeadEnd(B(''), 0), -1);
    assert.equal(findHeadEnd(B('\r\n\r\n'), 0), 4);
  });

  test('finds the first terminator at or after `from`', () => {
    const buf = B('A\r\n\r\nB\r\n\r\n');
    assert.equal(findHeadEnd(buf, 0), 5);
    assert.equal(findHeadEnd(buf, 1), 5);
    assert.equal(findHeadEnd(buf, 2), 10, 'a search starting inside a terminator misses it (callers resume at length - 3)');
    assert.equal(findHeadEnd(buf, 6), 10);
    assert.equal(findHeadEnd(buf, 7), -1);
  });

  test('bare LF LF is not a head end', () => {
    assert.equal(findHeadEnd(B('GET / HTTP/1.1\n\n'), 0), -1);
    assert.equal(findHeadEnd(B('GET / HTTP/1.1\r\n\n'), 0), -1);
  });
});

describe('incompleteHeadIsInvalid', () => {
  const B = (s: string) => Buffer.from(s, 'latin1');
  const check = (s: string) => incompleteHeadIsInvalid(B(s), 0, s.length);

  test('a well-formed prefix is not invalid yet', () => {
    for (const s of ['', 'G', 'GET / HTTP/1.1', 'GET / HTTP/1.1\r', 'GET / HTTP/1.1\r\n', 'GET / HTTP/1.1\r\nHost: a\r\n', 'GET / HTTP/1.1\r\nHost: a\r\n\r']) {
      assert.equal(check(s), false, JSON.stringify(s));
    }
  });

  test('bare LF, bare CR and NUL make it invalid at once', () => {
    for (const s of ['\n', 'GET / HTTP/1.1\n', 'GET / HTTP/1.1\r\nHost: a\nX', 'GET / HTTP/1.1\rX', 'GET / HTTP/1.1\r\r', 'GET /\0', 'GET / HTTP/1.1\r\n\n']) {
      assert.equal(check(s), true, JSON.stringify(s));
    }
  });

  test('only [start, end) is looked at; an LF at start counts as bare', () => {
    const buf = B('xx\r\nGET\n');
    assert.equal(incompleteHeadIsInvalid(buf, 4, 7), false);
    assert.equal(incompleteHeadIsInvalid(buf, 4, 8), true);
    assert.equal(incompleteHeadIsInvalid(buf, 3, 5), true, 'the CR before start is not part of this head');
  });

  test('other controls are left to the full parse (still a 400 there)', () => {
    assert.equal(check('GET / HTTP/1.1\r\nX: \x01'), false);
    assert.equal(parse(get11('X: \x01')).status, 400);
  });
});
