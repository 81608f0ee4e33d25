import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LocationMatcher, compileNginxRegex, parseLocationMatch, type MatchableLocation } from '../../src/router/locations.js';
import { normalizePath } from '../../src/router/normalize.js';
import { ServerNameMatcher, hostWithoutPort } from '../../src/router/server-names.js';

function locations(specs: (string | [string, string[]])[]): LocationMatcher<string> {
  return new LocationMatcher(specs.map(build));
}

function build(spec: string | [string, string[]]): MatchableLocation<string> {
  const [text, children] = typeof spec === 'string' ? [spec, undefined] : spec;
  const match = parseLocationMatch(text);
  if ('error' in match) throw new Error(match.error);
  const regex = match.kind === 'regex' || match.kind === 'regex_caseless' ? compileNginxRegex(match.pattern, match.kind === 'regex_caseless') : undefined;
  return { match, regex, children: children === undefined ? undefined : new LocationMatcher(children.map((c) => build(c))), value: text };
}

test("nginx's documented example picks the documented configurations", () => {
  // https://nginx.org/en/docs/http/ngx_http_core_module.html#location
  const m = locations(['= /', '/', '/documents/', '^~ /images/', '~* \\.(gif|jpg|jpeg)$']);
  assert.equal(m.find('/')?.value, '= /'); // A
  assert.equal(m.find('/index.html')?.value, '/'); // B
  assert.equal(m.find('/documents/document.html')?.value, '/documents/'); // C
  assert.equal(m.find('/images/1.gif')?.value, '^~ /images/'); // D
  assert.equal(m.find('/documents/1.jpg')?.value, '~* \\.(gif|jpg|jpeg)$'); // E
});

test('longest prefix wins; regexes in config order beat a plain prefix', () => {
  const m = locations(['/api', '/api/v2/', '~ ^/api/v2/special', '~ /special']);
  assert.equal(m.find('/api/v1/x')?.value, '/api');
  assert.equal(m.find('/api/v2/x')?.value, '/api/v2/');
  assert.equal(m.find('/api/v2/special')?.value, '~ ^/api/v2/special');
  assert.equal(m.find('/apix')?.value, '/api', 'prefix match is a plain string prefix, like nginx');
  assert.equal(m.find('/other'), undefined);
});

test('~* is case-insensitive, ~ is not; regex captures are returned', () => {
  const m = locations(['~ ^/User/(\\d+)$', '~* \\.PNG$']);
  assert.deepEqual(m.find('/User/42')?.captures, ['/User/42', '42']);
  assert.equal(m.find('/user/42'), undefined);
  assert.equal(m.find('/a/b.png')?.value, '~* \\.PNG$');
});

test('nested locations: a nested regex wins over outer ones', () => {
  const m = locations([['/static/', ['~ \\.css$']], '~ \\.css$x', '~ \\.(css|js)$']);
  assert.equal(m.find('/static/site.css')?.value, '~ \\.css$');
  assert.equal(m.find('/static/app.js')?.value, '~ \\.(css|js)$');
  assert.equal(m.find('/static/logo.svg')?.value, '/static/');
});

test('prefix lookup is flat in the number of locations', () => {
  const many = Array.from({ length: 10_000 }, (_, i) => `/p${i}/`);
  const m = locations(many);
  assert.equal(m.find('/p9999/x')?.value, '/p9999/');
  assert.equal(m.find('/p0/')?.value, '/p0/');
});

test('path normalisation: dots, encoded dots and slashes, merged slashes', () => {
  assert.equal(normalizePath('/api/v1'), '/api/v1');
  assert.equal(normalizePath('/api/../admin'), '/admin');
  assert.equal(normalizePath('/api/%2e%2e/admin'), '/admin');
  assert.equal(normalizePath('/api%2F..%2Fadmin'), '/admin');
  assert.equal(normalizePath('//api///x'), '/api/x');
  assert.equal(normalizePath('//api///x', false), '//api///x');
  assert.equal(normalizePath('/a/./b/.'), '/a/b/');
  assert.equal(normalizePath('/../etc/passwd'), undefined, 'above the root');
  assert.equal(normalizePath('/%2e%2e/etc'), undefined);
  assert.equal(normalizePath('/a%00b'), undefined, 'NUL');
  assert.equal(normalizePath('/a%zz'), undefined, 'bad escape');
  assert.equal(normalizePath('/caf%C3%A9'), '/café');
});

test('server_name: exact, leading and trailing wildcards, regex, default', () => {
  const entries = [
    { names: ['example.org', 'www.example.org'], server: 'exact' },
    { names: ['*.example.org'], server: 'star' },
    { names: ['.example.net'], server: 'dot' },
    { names: ['mail.*'], server: 'trailing' },
    { names: ['~^(?<user>.+)\\.example\\.com$'], server: 'regex' },
  ];
  const m = new ServerNameMatcher(entries, 'default');
  assert.equal(m.find('example.org'), 'exact');
  assert.equal(m.find('a.example.org'), 'star');
  assert.equal(m.find('example.net'), 'dot');
  assert.equal(m.find('x.example.net'), 'dot');
  assert.equal(m.find('mail.foo.io'), 'trailing');
  assert.equal(m.find('bob.example.com'), 'regex');
  assert.equal(m.find('unknown.io'), 'default');
  assert.equal(m.find(''), 'default');
});

test('server_name wildcards: the longest wins at any depth, the first of equal names wins, among thousands', () => {
  const entries = [
    { names: ['*.example.org'], server: 'org' },
    { names: ['*.api.example.org'], server: 'api' },
    { names: ['.example.org'], server: 'dot-dup' }, // same fixed part as *.example.org: the first one stays
    { names: ['mail.*'], server: 'mail' },
    { names: ['mail.example.*'], server: 'mail-example' },
    ...Array.from({ length: 5000 }, (_, i) => ({ names: [`*.tenant${i}.example.com`, `app${i}.*`], server: `tenant${i}` })),
  ];
  const m = new ServerNameMatcher(entries, 'default');
  assert.equal(m.find('www.example.org'), 'org');
  assert.equal(m.find('a.b.c.example.org'), 'org', 'a leading wildcard matches at any depth');
  assert.equal(m.find('v1.api.example.org'), 'api', 'the longest leading wildcard wins');
  assert.equal(m.find('api.example.org'), 'org', '*.api.example.org needs a label before .api');
  assert.equal(m.find('example.org'), 'dot-dup', '.example.org also names the bare domain');
  assert.equal(m.find('mail.example.net'), 'mail-example', 'the longest trailing wildcard wins');
  assert.equal(m.find('mail.foo'), 'mail');
  assert.equal(m.find('mail.'), 'default', 'a trailing wildcard needs a label after it');
  assert.equal(m.find('x.tenant4999.example.com'), 'tenant4999');
  assert.equal(m.find('app123.eu.local'), 'tenant123');
  assert.equal(m.find('tenant5000.example.com'), 'default');
  assert.equal(m.find('.example.org'), 'default', 'no label before the wildcard part');
});

test('$host is the Host without port or trailing dot', () => {
  assert.equal(hostWithoutPort('example.org:8443'), 'example.org');
  assert.equal(hostWithoutPort('example.org.'), 'example.org');
  assert.equal(hostWithoutPort('[::1]:80'), '[::1]');
  assert.equal(hostWithoutPort('plain'), 'plain');
});
