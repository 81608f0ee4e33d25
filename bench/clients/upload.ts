/**
 * Upload client, run by the harness as its own process pinned to the load
 * core: sends `count` sequential POSTs of `bytes` each, streamed from one
 * reused 1 MiB buffer (so the client's own memory stays flat and nothing
 * touches the disk), and prints one JSON line with the timings.
 *
 * usage: node upload.js --port P --path /upload --bytes N --count K
 */
import { request } from 'node:http';

export interface UploadReport {
  uploads: { bytes: number; ms: number; status: number; earlyResponse: boolean }[];
  error?: string;
}

const CHUNK = Buffer.alloc(1024 * 1024, 'fulcrum-bench-upload ');

function arg(name: string): string {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  if (v === undefined) throw new Error(`missing ${name}`);
  return v;
}

function uploadOnce(port: number, path: string, bytes: number): Promise<UploadReport['uploads'][number]> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let sent = 0;
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent: false,
        // No "Expect: 100-continue": the body follows the headers at once.
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes) },
      },
      (res) => {
        // A response before the client even handed over the whole body means
        // something answered without reading the upload; the harness reports it.
        const earlyResponse = sent < bytes;
        res.resume();
        res.on('end', () =>
          resolve({ bytes, ms: performance.now() - started, status: res.statusCode ?? 0, earlyResponse }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    const pump = () => {
      while (sent < bytes) {
        const n = Math.min(CHUNK.length, bytes - sent);
        sent += n;
        const ok = req.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n));
        if (!ok) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

async function main(): Promise<void> {
  const port = Number(arg('--port'));
  const path = arg('--path');
  const bytes = Number(arg('--bytes'));
  const count = Number(arg('--count'));
  const report: UploadReport = { uploads: [] };
  try {
    for (let i = 0; i < count; i++) report.uploads.push(await uploadOnce(port, path, bytes));
  } catch (err) {
    report.error = err instanceof Error ? err.message : String(err);
  }
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

void main();
