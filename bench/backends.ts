/**
 * The backends every proxy forwards to: one nginx (bench/configs/backends.conf)
 * listening on three ports, pinned to the load core, started once per
 * session and checked before any proxy is measured.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeBackendsConf } from './configs.js';
import { ManagedProcess } from './processes.js';
import { freePort, httpRequest, waitForPort } from './probes.js';
import { LOAD_CPUS } from './system.js';

export const HELLO_BODY = 'Hello, World!';
export const ONE_MB_BYTES = 1024 * 1024;

export interface Backends {
  ports: [number, number, number];
  proc: ManagedProcess;
  uploadLogPath: string;
}

/** One entry of backends.conf's upload log: which upload arrived, and how big. */
export interface UploadLogEntry {
  port: number;
  requestLength: number;
  status: number;
}

export async function startBackends(tmp: string): Promise<Backends> {
  const www = join(tmp, 'www');
  mkdirSync(www, { recursive: true });
  // Random bytes: nothing on the path compresses, but no proxy should try.
  writeFileSync(join(www, '1mb'), randomBytes(ONE_MB_BYTES));
  // /upload maps to this empty file so that POST gets a 405 (turned into 200)
  // rather than a 404 with an error-log line per upload.
  writeFileSync(join(www, 'upload'), '');

  const ports: [number, number, number] = [await freePort(), await freePort(), await freePort()];
  const conf = writeBackendsConf(tmp, ports);
  const proc = new ManagedProcess(
    'backends',
    ['nginx', '-p', tmp, '-c', conf, '-e', 'stderr', '-g', `daemon off; pid ${join(tmp, 'backends.pid')};`],
    { cpus: LOAD_CPUS },
  );
  const backends: Backends = { ports, proc, uploadLogPath: join(tmp, 'backend-upload.log') };
  try {
    for (const port of ports) await waitForPort(port, proc, 10_000);
    await checkBackends(backends);
  } catch (err) {
    await proc.stop();
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`backends (nginx) failed: ${reason}\n${proc.stderrTail()}`);
  }
  return backends;
}

/** Each backend answers all three kinds of request the scenarios send. */
async function checkBackends(b: Backends): Promise<void> {
  for (const port of b.ports) {
    const hello = await httpRequest(port, '/');
    if (hello.status !== 200 || hello.body.toString() !== HELLO_BODY) {
      throw new Error(`GET / on ${port}: ${hello.status} "${hello.body.toString().slice(0, 80)}"`);
    }
    const big = await httpRequest(port, '/1mb');
    if (big.status !== 200 || big.body.length !== ONE_MB_BYTES) {
      throw new Error(`GET /1mb on ${port}: ${big.status}, ${big.body.length} bytes`);
    }
    const offset = uploadLogOffset(b);
    const body = randomBytes(256 * 1024);
    const up = await httpRequest(port, '/upload', { method: 'POST', body });
    const logged = await waitForUploadLog(b, offset, 1);
    if (up.status !== 200 || logged.length !== 1 || logged[0]!.requestLength < body.length) {
      throw new Error(`POST /upload on ${port}: ${up.status}, upload log ${JSON.stringify(logged)}`);
    }
  }
}

/**
 * Connections the backends have accepted so far (all three ports: one nginx
 * worker), not counting the connection of this query itself. The difference
 * over a run is the number of connections the proxy opened to its backends.
 */
export async function backendAccepts(b: Backends): Promise<number> {
  const r = await httpRequest(b.ports[0], '/bench-backend-status');
  // "Active connections: 3 \nserver accepts handled requests\n 17 17 25 \n..."
  const m = r.body.toString().match(/^\s*(\d+)\s+\d+\s+\d+\s*$/m);
  if (r.status !== 200 || !m) throw new Error(`backend status: ${r.status} ${r.body.toString().slice(0, 80)}`);
  return Number(m[1]) - 1;
}

/** Current size of the upload log: pass it to readUploadLog to see only newer entries. */
export function uploadLogOffset(b: Backends): number {
  return existsSync(b.uploadLogPath) ? statSync(b.uploadLogPath).size : 0;
}

/**
 * nginx writes the access-log line after the response has gone out, so a
 * client can see its answer before the line exists: poll briefly for it.
 */
export async function waitForUploadLog(b: Backends, offset: number, expected: number, timeoutMs = 2000): Promise<UploadLogEntry[]> {
  const deadline = Date.now() + timeoutMs;
  let entries = readUploadLog(b, offset);
  while (entries.length < expected && Date.now() < deadline) {
    await sleep(20);
    entries = readUploadLog(b, offset);
  }
  return entries;
}

export function readUploadLog(b: Backends, offset: number): UploadLogEntry[] {
  if (!existsSync(b.uploadLogPath)) return [];
  return readFileSync(b.uploadLogPath)
    .subarray(offset)
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [port, length, status] = line.split(' ').map(Number);
      return { port: port ?? 0, requestLength: length ?? 0, status: status ?? 0 };
    });
}
