/**
 * Packaging for the seed's world (issue 6): the Dockerfile and
 * deploy/compose.yml. There is no Docker engine on these machines, so the
 * image is not built here (the test says so when `docker` is missing); what
 * can be checked is: the compose file is the seed's with nginx and certbot
 * replaced by fulcrum (ACME on), scalable backends, and the fulcrum
 * configuration inside it — after Compose's variable interpolation — passes
 * `fulcrum check`; the Dockerfile is multi-stage and runs as a non-root user.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { runFulcrum } from '../support/fulcrum.js';
import { SEED_DIR } from '../support/seed.js';
import { tempDir } from '../support/tmp.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function dockerAvailable(): boolean {
  try {
    execFileSync('docker', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Docker Compose's interpolation: $$ -> $, ${VAR}, ${VAR:-default}, ${VAR:?error}. */
function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g, (all, name: string | undefined, op: string | undefined, arg: string | undefined) => {
    if (all === '$$') return '$';
    const value = env[name!];
    if (value !== undefined && value !== '') return value;
    if (op?.endsWith('-')) return arg ?? '';
    if (op?.endsWith('?')) throw new Error(`required variable ${name} is not set: ${arg}`);
    return '';
  });
}

describe('packaging', () => {
  test('deploy/compose.yml: the seed with fulcrum instead of nginx and certbot; its fulcrum config passes `fulcrum check`', async (t) => {
    const text = readFileSync(join(ROOT, 'deploy', 'compose.yml'), 'utf8');
    assert.throws(() => interpolate(text, {}), /FULCRUM_ADMIN_TOKEN|ACME_EMAIL/, 'secrets and the ACME contact are required');
    const compose = parseYaml(interpolate(text, { FULCRUM_ADMIN_TOKEN: 'x', ACME_EMAIL: 'ops@example.org' })) as {
      services: Record<string, { image?: string; build?: unknown; container_name?: string; ports?: string[]; restart?: string; configs?: { source: string; target: string }[]; volumes?: string[] }>;
      configs: Record<string, { content: string }>;
    };
    const services = Object.keys(compose.services).sort();
    assert.deepEqual(services, ['backend', 'fulcrum', 'redis'], 'nginx and certbot are gone');
    const seed = parseYaml(readFileSync(join(SEED_DIR, 'docker-compose.yml'), 'utf8')) as { services: Record<string, unknown> };
    assert.deepEqual(compose.services.backend, seed.services.backend, 'the backend service is the seed\'s');
    assert.deepEqual(compose.services.redis, seed.services.redis, 'redis is the seed\'s');
    assert.equal(compose.services.backend!.container_name, undefined, 'no container_name: `--scale backend=N` works');
    const f = compose.services.fulcrum!;
    assert.ok(f.build, 'fulcrum is built from this repository');
    assert.deepEqual(f.ports, ['80:80', '443:443', '127.0.0.1:9090:9090'], 'the admin listener is published on the host loopback only');
    assert.equal(f.restart, 'always');
    const mount = f.configs!.find((c) => c.source === 'fulcrum_conf')!;
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    assert.ok(dockerfile.includes(mount.target), `the image's command reads ${mount.target}`);

    const config = compose.configs.fulcrum_conf!.content;
    assert.match(config, /acme on;/);
    assert.match(config, /server backend:8080 resolve/);
    assert.match(config, /proxy_set_header Host \$host;/, '$$ became $');
    const dir = tempDir('fulcrum-compose-');
    const file = join(dir, 'fulcrum.conf');
    writeFileSync(file, config);
    const check = await runFulcrum(['check', '--config', file]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stderr, /test is successful/);
    if (!dockerAvailable()) t.diagnostic('no Docker engine on this machine: `docker compose config` and the image build are not run');
  });

  test('Dockerfile: multi-stage, non-root, runtime dependencies only', (t) => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const stages = [...dockerfile.matchAll(/^FROM (\S+)(?: AS (\S+))?$/gm)];
    assert.ok(stages.length >= 2, 'multi-stage');
    const final = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    assert.match(final, /^USER (nonroot|node|[1-9][0-9]*)/m, 'the final stage runs as a non-root user');
    assert.doesNotMatch(final, /npm (ci|install)|apt-get/, 'nothing is installed in the final stage');
    assert.match(final, /COPY --from=\S+ \S*node_modules/, 'node_modules come from the build stage (pruned to production)');
    assert.match(dockerfile, /npm prune --omit=dev/);
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    for (const entry of ['node_modules', 'dist', '.git']) assert.ok(ignore.includes(entry), `.dockerignore has ${entry}`);
    if (!dockerAvailable()) t.diagnostic('no Docker engine on this machine: the image is not built');
  });
});
