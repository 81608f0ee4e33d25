/**
 * `fulcrum demo`: the seed's topology on one machine with no setup. Starts N
 * demo backends (restarted when they die, like Compose's `restart: always`)
 * and fulcrum in front of them with a config shaped like the seed's
 * nginx.conf: round robin with max_fails=3 fail_timeout=30s, long timeouts,
 * streaming both ways, the forwarding headers, an ACME webroot, and an HTTPS
 * listener (with a temporary self-signed certificate).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startReplicas, type ReplicaEvent } from '../demo/replicas.js';
import { log } from '../log/error-log.js';
import { Runtime } from '../runtime/runtime.js';
import { waitForSignals } from './start.js';

export interface DemoOptions {
  /** `--scale backend=3` values. */
  scale: readonly string[];
  port: string | undefined;
}

export function demoConfig(ports: readonly number[], httpPort: number, httpsPort: number, webroot: string): string {
  const servers = ports.map((p) => `        server 127.0.0.1:${p} max_fails=3 fail_timeout=30s;`).join('\n');
  const proxy = `            proxy_pass http://backend_servers;
            proxy_connect_timeout 300;
            proxy_send_timeout 300;
            proxy_read_timeout 300;
            send_timeout 300;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;`;
  return `# fulcrum demo: the seed's nginx.conf on loopback ports.
worker_processes 1;
events {
    worker_connections 1024;
}

http {
    access_log stdout;
    client_max_body_size 0;

    upstream backend_servers {
${servers}
        keepalive 32;
    }

    server {
        listen 127.0.0.1:${httpPort};

        location /.well-known/acme-challenge/ {
            allow all;
            root ${webroot};
        }

        location /api {
${proxy}
        }

        location = / {
            return 200 "fulcrum demo: try /api/hello, /api/whoami, /api/stream, /api/slow?ms=2000, /api/status/503, /api/crash\\n";
        }
    }

    server {
        listen 127.0.0.1:${httpsPort} ssl;
        server_name localhost;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        ssl_session_timeout 1h;
        chunked_transfer_encoding on;

        location /api {
${proxy}
        }
    }
}
`;
}

function parseScale(scale: readonly string[]): number {
  let count = 3;
  for (const s of scale) {
    const m = /^backend=([0-9]+)$/.exec(s);
    if (m === null || +m[1]! < 1 || +m[1]! > 64) throw new Error(`--scale expects backend=N with N from 1 to 64, got "${s}"`);
    count = +m[1]!;
  }
  return count;
}

export async function runDemo(options: DemoOptions): Promise<number> {
  let count: number;
  try {
    count = parseScale(options.scale);
  } catch (err) {
    process.stderr.write(`fulcrum demo: ${(err as Error).message}\n`);
    return 2;
  }
  const httpPort = options.port === undefined ? 8080 : +options.port;
  const httpsPort = httpPort + 363; // 8080 -> 8443
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fulcrum-demo-'));
  const webroot = path.join(dir, 'www');
  fs.mkdirSync(path.join(webroot, '.well-known', 'acme-challenge'), { recursive: true });
  fs.writeFileSync(path.join(webroot, '.well-known', 'acme-challenge', 'demo-token'), 'demo-token.served-from-the-webroot\n');

  const replicas = await startReplicas({
    count,
    onEvent: (e: ReplicaEvent) => {
      if (e.type === 'started') log().info({ backend: e.name, port: e.port, pid: e.pid }, 'demo backend started');
      else if (e.type === 'exited') log().warn({ backend: e.name, code: e.code, signal: e.signal }, 'demo backend exited');
      else log().info({ backend: e.name, delayMs: e.delayMs }, 'demo backend restarting (restart: always)');
    },
  });
  const configPath = path.join(dir, 'fulcrum.conf');
  fs.writeFileSync(configPath, demoConfig(replicas.ports, httpPort, httpsPort, webroot));
  const runtime = new Runtime({ configPath });
  try {
    await runtime.start();
  } catch (err) {
    process.stderr.write(`fulcrum demo: ${(err as Error).message}\n`);
    await replicas.stop();
    return 1;
  }
  const base = `http://127.0.0.1:${httpPort}`;
  process.stderr.write(
    `\nfulcrum demo: ${count} backends (${replicas.names.join(', ')}) behind fulcrum.\n` +
      `  config (edit it, then kill -HUP ${process.pid} to reload): ${configPath}\n\n` +
      `  curl ${base}/api/hello               # run it a few times: the replicas answer in turn\n` +
      `  curl ${base}/api/whoami              # the headers the backend received\n` +
      `  curl -N ${base}/api/stream           # server-sent events, streamed as they come\n` +
      `  curl ${base}/api/slow?ms=2000        # a slow answer\n` +
      `  curl ${base}/api/crash               # kills a backend: it is restarted, and the next requests go elsewhere\n` +
      `  curl ${base}/.well-known/acme-challenge/demo-token   # the ACME webroot\n` +
      `  curl -k https://localhost:${httpsPort}/api/hello   # TLS, temporary self-signed certificate\n\n` +
      `  Ctrl-C stops everything.\n\n`,
  );
  return waitForSignals(runtime, async () => {
    await replicas.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
}
