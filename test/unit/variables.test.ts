import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestHead, parseRequestHead } from '../../src/http/request-head.js';
import { compileLogFormat, COMBINED_FORMAT } from '../../src/log/access-log.js';
import type { VariableContext } from '../../src/variables/context.js';
import { UnknownVariableError, compileTemplate } from '../../src/variables/template.js';

function context(headText: string, overrides: Partial<VariableContext> = {}): VariableContext {
  const head = new RequestHead();
  assert.equal(parseRequestHead(headText, head), 0, head.error);
  const q = head.path.indexOf('?');
  return {
    request: head,
    uri: q < 0 ? head.path : head.path.slice(0, q),
    args: q < 0 ? '' : head.path.slice(q + 1),
    remoteAddr: '10.0.0.7',
    remotePort: 51000,
    realipRemoteAddr: '10.0.0.7',
    realipRemotePort: 51000,
    serverAddr: '127.0.0.1',
    serverPort: 443,
    scheme: 'https',
    serverName: 'blarybus.example',
    host: 'api.example',
    captures: null,
    requestId: 'rid',
    connectionId: 3,
    connectionRequests: 1,
    startTime: Date.now(),
    status: 200,
    bytesSent: 0,
    bodyBytesSent: 13,
    requestLength: 80,
    upstreamAddr: '127.0.0.1:8080',
    upstreamStatus: '200',
    upstreamResponseTime: '0.002',
    upstreamConnectTime: '0.000',
    upstreamHeaderTime: '0.001',
    proxyHost: 'backend_servers',
    proxyPort: '80',
    sentHeader: () => undefined,
    upstreamHeader: () => undefined,
    userVariable: () => "",
    ...overrides,
  };
}

const GET = 'GET /api/items?id=5&sort=asc HTTP/1.1\r\nHost: api.example:443\r\nX-Forwarded-For: 1.2.3.4\r\nUser-Agent: curl/8\r\nCookie: a=1\r\nCookie: session=xyz';

test("the seed's redirect target: https://$host$request_uri", () => {
  assert.equal(compileTemplate('https://$host$request_uri').expand(context(GET)), 'https://api.example/api/items?id=5&sort=asc');
});

test('the seed\'s forwarding headers', () => {
  const ctx = context(GET);
  assert.equal(compileTemplate('$remote_addr').expand(ctx), '10.0.0.7');
  assert.equal(compileTemplate('$proxy_add_x_forwarded_for').expand(ctx), '1.2.3.4, 10.0.0.7');
  assert.equal(compileTemplate('$scheme').expand(ctx), 'https');
  const noXff = context('GET / HTTP/1.1\r\nHost: a');
  assert.equal(compileTemplate('$proxy_add_x_forwarded_for').expand(noXff), '10.0.0.7');
});

test('$uri, $args, $arg_NAME, $is_args, $http_NAME, $cookie_NAME, ${braces}', () => {
  const ctx = context(GET);
  assert.equal(compileTemplate('$uri$is_args$args').expand(ctx), '/api/items?id=5&sort=asc');
  assert.equal(compileTemplate('$arg_sort').expand(ctx), 'asc');
  assert.equal(compileTemplate('$http_user_agent').expand(ctx), 'curl/8');
  assert.equal(compileTemplate('$cookie_session').expand(ctx), 'xyz');
  assert.equal(compileTemplate('${server_name}x').expand(ctx), 'blarybus.examplex');
  assert.equal(compileTemplate('$http_missing').expand(ctx), '');
});

test('constants expand to themselves without work; unknown variables are errors', () => {
  const t = compileTemplate('plain text');
  assert.equal(t.constant, 'plain text');
  assert.throws(() => compileTemplate('$no_such_thing'), (e: unknown) => e instanceof UnknownVariableError && e.variable === 'no_such_thing');
});

test('the combined access-log format, with nginx escaping and "-" for empty values', () => {
  const line = compileLogFormat(COMBINED_FORMAT, 'default')(context('GET /x HTTP/1.1\r\nHost: a\r\nUser-Agent: evil"agent'));
  assert.match(line, /^10\.0\.0\.7 - - \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET \/x HTTP\/1\.1" 200 13 "-" "evil\\x22agent"$/);
});
