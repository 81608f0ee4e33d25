/** The configuration directives of issue 6, in both formats. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { LogSinks } from '../../src/log/access-log.js';
import { compile } from '../../src/runtime/compile.js';
import { ServerRegistry } from '../../src/upstream/group.js';
import { parseAdminListen } from '../../src/admin/server.js';

function nginx(text: string) {
  return loadConfig('/etc/fulcrum/fulcrum.conf', { format: 'nginx', text }).config;
}

function errors(text: string, format: 'nginx' | 'yaml' = 'nginx'): string[] {
  try {
    const loaded = loadConfig(`/etc/fulcrum/fulcrum.${format === 'nginx' ? 'conf' : 'yaml'}`, { format, text });
    compile(loaded, { registry: new ServerRegistry(), logSinks: new LogSinks(), generation: 0, dryRun: true });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.diagnostics.map((d) => d.message);
    throw err;
  }
}

describe('operations directives', () => {
  test('admin, watch_config, reload_stream_timeout, resolver, servers_file', () => {
    const c = nginx(`
watch_config on;
reload_stream_timeout 1h;
admin { listen 9090; token env:FULCRUM_ADMIN_TOKEN; }
http {
  resolver 127.0.0.11 10.0.0.2:5353 valid=10s;
  resolver_timeout 5s;
  upstream a { server backend:8080 resolve; server svc.test service=http resolve backup; }
  upstream b { servers_file backends.yaml; }
}`);
    assert.equal(c.watch_config, true);
    assert.equal(c.reload_stream_timeout, 3_600_000);
    assert.deepEqual(c.admin, { listen: '9090', token: 'env:FULCRUM_ADMIN_TOKEN' });
    assert.deepEqual(c.http.resolver, ['127.0.0.11', '10.0.0.2:5353']);
    assert.equal(c.http.resolver_valid, 10_000);
    assert.equal(c.http.resolver_timeout, 5000);
    assert.deepEqual(c.http.upstreams[0]!.servers.map((s) => [s.resolve, s.service, s.backup]), [[true, undefined, false], [true, 'http', true]]);
    assert.equal(c.http.upstreams[1]!.servers_file, 'backends.yaml');
    assert.deepEqual(c.http.upstreams[1]!.servers, []);
    const defaults = nginx('http {}');
    assert.deepEqual([defaults.watch_config, defaults.reload_stream_timeout, defaults.admin], [false, 0, undefined]);
  });

  test('errors', () => {
    assert.match(errors('http { upstream a { } }')[0]!, /no servers are inside upstream "a"/);
    assert.match(errors('http:\n  upstreams:\n    - name: a\n', 'yaml')[0]!, /needs at least one server \(or a servers_file\)/);
    assert.deepEqual(errors('http:\n  upstreams:\n    - { name: a, servers_file: b.yaml }\n', 'yaml'), []);
    assert.match(errors('http { upstream a { server svc.test service=http; } }')[0]!, /"service" parameter requires "resolve"/);
    assert.match(errors('admin { listen 1.2.3.4:80 extra; }')[0]!, /invalid number of arguments in "listen"/);
    assert.match(errors('admin { listen backend:9090; }')[0]!, /admin listen must be address:port or a port/);
    assert.match(errors('listen 80;')[0]!, /not allowed here/);
  });

  test('admin listen forms', () => {
    assert.deepEqual(parseAdminListen('9090'), { host: '127.0.0.1', port: 9090 });
    assert.deepEqual(parseAdminListen('*:9090'), { host: '0.0.0.0', port: 9090 });
    assert.deepEqual(parseAdminListen('[::1]:9090'), { host: '::1', port: 9090 });
    assert.deepEqual(parseAdminListen('10.1.2.3:80'), { host: '10.1.2.3', port: 80 });
    assert.equal(typeof parseAdminListen('host:80'), 'string');
  });
});
