/**
 * nginx's auth_basic in front of a real backend: no or wrong credentials get
 * 401 with `WWW-Authenticate: Basic realm="..."` and never reach the backend;
 * every password scheme fulcrum supports, with hashes made by `openssl
 * passwd` and Apache's `htpasswd` in the test; `$remote_user`; `satisfy
 * all|any` with allow/deny; inheritance and `auth_basic off`. The
 * expectations were read from nginx 1.22 on the same configuration (401 and
 * its header, satisfy any letting either the address or the password in,
 * `deny` winning over good credentials under satisfy all, `$remote_user`
 * naming the header's user whether or not it was checked). Config errors
 * name the directive's file and line.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnBackends, headerValues, type TestBackends } from '../support/backends.js';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { request, keepAliveAgent } from '../support/http-client.js';
import { freePorts } from '../support/ports.js';
import { expectConfigError } from '../support/config-check.js';
import { tempDir } from '../support/tmp.js';

let backends: TestBackends;
let fulcrum: FulcrumProcess;
let port: number;
const dir = tempDir('fulcrum-auth-basic-');
const accessLog = join(dir, 'access.log');

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args).toString().trim();
}

let hasHtpasswd = true;
function htpasswd(flag: string, user: string, password: string): string {
  try {
    return run('htpasswd', [`-nb${flag}`, user, password]);
  } catch {
    hasHtpasswd = false;
    return '';
  }
}

/** user -> password, each stored with another scheme. */
const USERS: Record<string, string> = {
  plain: 'plain-pw',
  sha: 'sha-pw',
  ssha: 'ssha-pw',
  apr1: 'apr1 pw',
  md5: 'md5-pw',
  sha256: 'sha256-pw',
  sha512: 'sha512-pw',
  rounds: 'rounds-pw',
  htmd5: 'ht-md5',
  htsha: 'ht-sha',
  ht256: 'ht-256',
  ht512: 'ht-512',
};

function userFile(): string {
  const salt = Buffer.from('s4lt');
  const ssha = Buffer.concat([
    execFileSync('openssl', ['dgst', '-sha1', '-binary'], { input: Buffer.concat([Buffer.from(USERS.ssha!), salt]) }),
    salt,
  ]).toString('base64');
  const lines = [
    '# a comment line',
    `plain:{PLAIN}${USERS.plain}:a comment after the password`,
    `sha:{SHA}${execFileSync('openssl', ['dgst', '-sha1', '-binary'], { input: USERS.sha }).toString('base64')}`,
    `ssha:{SSHA}${ssha}`,
    `apr1:${run('openssl', ['passwd', '-apr1', USERS.apr1!])}`,
    `md5:${run('openssl', ['passwd', '-1', USERS.md5!])}`,
    `sha256:${run('openssl', ['passwd', '-5', USERS.sha256!])}`,
    `sha512:${run('openssl', ['passwd', '-6', USERS.sha512!])}`,
    `rounds:${run('openssl', ['passwd', '-6', '-salt', 'rounds=2000$pepper', USERS.rounds!])}`,
    htpasswd('m', 'htmd5', USERS.htmd5!),
    htpasswd('s', 'htsha', USERS.htsha!),
    htpasswd('2', 'ht256', USERS.ht256!),
    htpasswd('5', 'ht512', USERS.ht512!),
    // bcrypt needs a library fulcrum does without: a warning at load, and the entry never matches.
    'bcrypt:$2y$05$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC',
    // The first line naming a user is the one nginx uses.
    `plain:{PLAIN}second-line-is-ignored`,
    '',
  ];
  return lines.join('\n');
}

before(async () => {
  backends = await spawnBackends(1);
  [port] = await freePorts(1);
  writeFileSync(join(dir, 'users'), userFile());
  fulcrum = await startFulcrum({
    dir,
    config: `
events {}
http {
  log_format withuser '$remote_user|$request_uri|$status';
  access_log ${accessLog} withuser;
  upstream app { server 127.0.0.1:${backends.ports[0]}; }
  auth_basic_user_file users;
  server {
    listen 127.0.0.1:${port};
    proxy_set_header X-Remote-User $remote_user;
    location /private/ { auth_basic "Team Area"; proxy_pass http://app/; }
    location /private/open/ { auth_basic "Team Area"; location /private/open/inner/ { auth_basic off; proxy_pass http://app/; } proxy_pass http://app/; }
    location /any-allowed/ { satisfy any; allow 127.0.0.1; deny all; auth_basic "x"; proxy_pass http://app/; }
    location /any-denied/ { satisfy any; allow 10.0.0.0/8; deny all; auth_basic "x"; proxy_pass http://app/; }
    location /all-denied/ { deny 127.0.0.1; auth_basic "x"; proxy_pass http://app/; }
    location /realm-var/ { auth_basic "host $host"; proxy_pass http://app/; }
    location /who { return 200 "user=[$remote_user]\\n"; }
    location / { proxy_pass http://app/; }
  }
}
`,
  });
});

after(async () => {
  await fulcrum?.stop();
  await backends?.stop();
});

function basic(user: string, password: string): string {
  return 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
}

async function backendCount(): Promise<number> {
  const res = await request({ port: backends.ports[0]!, path: '/count' });
  return (JSON.parse(res.body.toString()) as { total: number }).total;
}

describe('auth_basic', () => {
  test('without credentials or with wrong ones: 401 with nginx\'s WWW-Authenticate, and the backend sees nothing', async () => {
    const before = await backendCount();
    for (const authorization of [undefined, basic('plain', 'wrong'), basic('nobody', 'plain-pw'), 'Basic !!!', 'Bearer abc', basic('', 'plain-pw')]) {
      const res = await request({ port, path: '/private/whoami', headers: authorization === undefined ? {} : { authorization } });
      assert.equal(res.status, 401, String(authorization));
      assert.equal(res.headers['www-authenticate'], 'Basic realm="Team Area"');
    }
    assert.equal(await backendCount(), before);
  });

  test('a 401 without a body keeps the connection open, as nginx does', async () => {
    const agent = keepAliveAgent();
    try {
      const first = await request({ port, path: '/private/hello', agent });
      assert.equal(first.status, 401);
      const second = await request({ port, path: '/private/hello', agent, headers: { authorization: basic('plain', USERS.plain!) } });
      assert.equal(second.status, 200);
    } finally {
      agent.destroy();
    }
  });

  test('every supported scheme: the right password passes, a wrong one does not', async (t) => {
    for (const [user, password] of Object.entries(USERS)) {
      if (user.startsWith('ht') && !hasHtpasswd) {
        t.diagnostic(`htpasswd not installed: ${user} skipped`);
        continue;
      }
      const ok = await request({ port, path: '/private/whoami', headers: { authorization: basic(user, password) } });
      assert.equal(ok.status, 200, user);
      const bad = await request({ port, path: '/private/whoami', headers: { authorization: basic(user, password + 'x') } });
      assert.equal(bad.status, 401, user);
    }
    // The scheme keyword is case-insensitive and may be followed by several spaces (nginx's parser).
    const spaced = await request({ port, path: '/private/hello', headers: { authorization: 'basic   ' + Buffer.from('plain:plain-pw').toString('base64') } });
    assert.equal(spaced.status, 200);
  });

  test('unsupported entries are config warnings and never match; the first line for a user wins', async () => {
    const warning = await fulcrum.waitForLog((l) => typeof l.msg === 'string' && l.msg.includes('user "bcrypt"'));
    assert.equal(warning.level, 'warn');
    assert.match(String(warning.msg), /fulcrum\.conf:7:\d+: .*bcrypt/);
    assert.equal((await request({ port, path: '/private/hello', headers: { authorization: basic('bcrypt', 'anything') } })).status, 401);
    assert.equal((await request({ port, path: '/private/hello', headers: { authorization: basic('plain', 'second-line-is-ignored') } })).status, 401);
  });

  test('$remote_user: the authenticated user upstream and in the access log; any header user in a return', async () => {
    const res = await request({ port, path: '/private/whoami', headers: { authorization: basic('apr1', USERS.apr1!) } });
    const body = JSON.parse(res.body.toString()) as { headers: [string, string][] };
    assert.deepEqual(headerValues(body.headers, 'x-remote-user'), ['apr1']);
    // The Authorization header itself goes upstream, as nginx passes it.
    assert.deepEqual(headerValues(body.headers, 'authorization'), [basic('apr1', USERS.apr1!)]);
    // nginx's $remote_user decodes the header whether or not a password was checked.
    const who = await request({ port, path: '/who', headers: { authorization: basic('eve', 'unchecked') } });
    assert.equal(who.body.toString(), 'user=[eve]\n');
    assert.equal((await request({ port, path: '/who' })).body.toString(), 'user=[]\n');
    await waitFor(() => readFileSync(accessLog, 'utf8').includes('apr1|/private/whoami|200'));
    // An empty value is logged as "-", as nginx does.
    assert.match(readFileSync(accessLog, 'utf8'), /^-\|\/private\/whoami\|401$/m);
  });

  test('auth_basic off in a nested location; the realm may hold variables', async () => {
    assert.equal((await request({ port, path: '/private/open/hello' })).status, 401);
    assert.equal((await request({ port, path: '/private/open/inner/hello' })).status, 200);
    const res = await request({ port, path: '/realm-var/hello', headers: { host: 'example.test' } });
    assert.equal(res.headers['www-authenticate'], 'Basic realm="host example.test"');
  });

  test('satisfy any: an allowed address needs no password; a denied one needs it; satisfy all: deny wins', async () => {
    assert.equal((await request({ port, path: '/any-allowed/hello' })).status, 200);
    const denied = await request({ port, path: '/any-denied/hello' });
    assert.equal(denied.status, 401);
    assert.equal(denied.headers['www-authenticate'], 'Basic realm="x"');
    assert.equal((await request({ port, path: '/any-denied/hello', headers: { authorization: basic('md5', USERS.md5!) } })).status, 200);
    assert.equal((await request({ port, path: '/all-denied/hello' })).status, 403);
    assert.equal((await request({ port, path: '/all-denied/hello', headers: { authorization: basic('md5', USERS.md5!) } })).status, 403);
  });
});

async function waitFor(check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('auth_basic config errors', () => {
  const errDir = tempDir('fulcrum-auth-basic-errors-');
  const cases = [
    { name: 'unreadable user file', directive: 'auth_basic_user_file /nonexistent/htpasswd;', message: /cannot read "\/nonexistent\/htpasswd"/ },
    { name: 'bad satisfy value', directive: 'satisfy some;', message: /invalid value "some" in "satisfy" directive/ },
    { name: 'user file with variables', directive: 'auth_basic_user_file /etc/$host;', message: /variables in "auth_basic_user_file" are not supported/ },
  ];
  for (const c of cases) {
    test(c.name, () => expectConfigError(errDir, c.name, `http {\n  server {\n    listen 127.0.0.1:1;\n    ${c.directive}\n    return 204;\n  }\n}\n`, { line: 4, message: c.message }));
  }
});
