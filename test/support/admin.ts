/** Calls to fulcrum's admin API for tests. */
import { request } from './http-client.js';

export interface AdminResponse<T = any> {
  status: number;
  body: T;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

/** `method path` on the admin listener; `json` is sent as a JSON body, `token` as a bearer token. */
export async function admin<T = any>(port: number, method: string, path: string, opts: { token?: string; json?: unknown; body?: string; contentType?: string } = {}): Promise<AdminResponse<T>> {
  const headers: Record<string, string> = {};
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined = opts.body;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['content-type'] = 'application/json';
  } else if (opts.contentType !== undefined) headers['content-type'] = opts.contentType;
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
  const r = await request({ port, method, path, headers, body, timeoutMs: 10_000 });
  const text = r.body.toString('utf8');
  let parsed: unknown = text;
  if (String(r.headers['content-type'] ?? '').startsWith('application/json')) parsed = JSON.parse(text);
  return { status: r.status, body: parsed as T, text, headers: r.headers };
}

/** The upstream `name` as GET /api/upstreams/NAME returns it. */
export async function upstreamState(port: number, name: string): Promise<{ name: string; servers: any[] }> {
  const r = await admin(port, 'GET', `/api/upstreams/${encodeURIComponent(name)}`);
  if (r.status !== 200) throw new Error(`GET upstream ${name}: ${r.status} ${r.text}`);
  return r.body;
}

/** Parses Prometheus text: `metric{labels}` -> value. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$/.exec(line);
    if (m === null) throw new Error(`not a Prometheus sample line: ${line}`);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** The sum of every sample of `name` whose labels include all of `labels`. */
export function metricSum(metrics: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const [key, value] of metrics) {
    const brace = key.indexOf('{');
    const metric = brace < 0 ? key : key.slice(0, brace);
    if (metric !== name) continue;
    const text = brace < 0 ? '' : key.slice(brace);
    if (Object.entries(labels).every(([k, v]) => text.includes(`${k}="${v}"`))) sum += value;
  }
  return sum;
}
