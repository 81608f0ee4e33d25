/**
 * Helpers for the balancing integration tests (test/integration/balancing-*):
 * an nginx-syntax config around an upstream block, requests that report the
 * backend that answered, and bounded request loops.
 */
import http from 'node:http';
import { spawnBackends, type TestBackends } from './backends.js';
import { startFulcrum, type FulcrumProcess, type LogEntry } from './fulcrum.js';
import { request, type HttpResponse, type RequestOptions } from './http-client.js';
import { freePort } from './ports.js';

export interface BalancingEnv {
  backends: TestBackends;
  fulcrum: FulcrumProcess;
  port: number;
  /** `server 127.0.0.1:PORT PARAMS;` for backend i. */
  server(i: number, params?: string): string;
  config(upstream: string, opts?: ConfigOptions): string;
  stop(): Promise<void>;
}

export interface ConfigOptions {
  /** Main-level directives, e.g. `worker_processes 2;`. */
  main?: string;
  /** Directives of `location /`, after proxy_pass. */
  location?: string;
}

/** nginx-syntax config: one server on 127.0.0.1:port proxying / to `upstream u { ... }` (give its inner text). */
export function balancingConfig(port: number, upstreamInner: string, opts: ConfigOptions = {}): string {
  return `${opts.main ?? ''}
error_log stderr info;
events { worker_connections 512; }
http {
  access_log off;
  upstream u {
${upstreamInner}
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://u;
      debug_header on;
      ${opts.location ?? ''}
    }
  }
}
`;
}

/** Starts `n` backends and fulcrum with the config `makeConfig(env)` returns. Always `stop()`. */
export async function startBalancing(n: number, makeUpstream: (env: Pick<BalancingEnv, 'server'>) => string, opts: ConfigOptions = {}): Promise<BalancingEnv> {
  const backends = await spawnBackends(n);
  const port = await freePort();
  const server = (i: number, params = ''): string => `    server 127.0.0.1:${backends.ports[i]}${params === '' ? '' : ' ' + params};`;
  const config = (upstream: string, o: ConfigOptions = opts): string => balancingConfig(port, upstream, o);
  let fulcrum: FulcrumProcess;
  try {
    fulcrum = await startFulcrum({ config: config(makeUpstream({ server })) });
  } catch (err) {
    await backends.stop();
    throw err;
  }
  return {
    backends,
    fulcrum,
    port,
    server,
    config,
    async stop(this: BalancingEnv) {
      const f = this.fulcrum;
      await f.stop().catch(() => f.kill());
      await backends.stop();
    },
  };
}

export interface Answer {
  status: number;
  /** X-Backend of the response, '' if none. */
  backend: string;
  response?: HttpResponse;
  error?: string;
  /** performance.now() when the answer arrived. */
  at: number;
}

/** One request through fulcrum (a new connection unless an agent is given); never throws. */
export async function ask(port: number, path = '/hello', opts: Partial<RequestOptions> = {}): Promise<Answer> {
  try {
    const response = await request({ port, path, timeoutMs: 5000, ...opts });
    return { status: response.status, backend: String(response.headers['x-backend'] ?? ''), response, at: performance.now() };
  } catch (err) {
    return { status: 0, backend: '', error: (err as Error).message, at: performance.now() };
  }
}

export function countBy(answers: readonly Answer[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of answers) {
    const key = a.status === 200 ? a.backend : `status ${a.status}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

/** Sequential requests until `stop()` says so, at most `max` of them or `maxMs` long. */
export async function requestLoop(port: number, opts: { path?: string; max: number; maxMs: number; until?: (answers: Answer[]) => boolean; request?: Partial<RequestOptions> }): Promise<Answer[]> {
  const answers: Answer[] = [];
  const deadline = performance.now() + opts.maxMs;
  while (answers.length < opts.max && performance.now() < deadline) {
    answers.push(await ask(port, opts.path ?? '/hello', opts.request));
    if (opts.until?.(answers) === true) break;
  }
  return answers;
}

/** The health log entries (marked down / back up) fulcrum wrote, optionally for one backend port. */
export function healthLogs(fulcrum: FulcrumProcess, port?: number): LogEntry[] {
  return fulcrum.logs.filter(
    (e) => (e.msg === 'upstream server marked down' || e.msg === 'upstream server back up') && (port === undefined || e.server === `127.0.0.1:${port}`),
  );
}

/** A GET from a given local address (any 127.x.y.z works on Linux loopback), for ip_hash. */
export function askFrom(port: number, localAddress: string, path = '/hello'): Promise<Answer> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, localAddress, agent: false, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const response = { status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks), httpVersion: res.httpVersion, trailers: res.trailers };
        resolve({ status: response.status, backend: String(res.headers['x-backend'] ?? ''), response, at: performance.now() });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: 0, backend: '', error: err.message, at: performance.now() }));
    req.end();
  });
}
