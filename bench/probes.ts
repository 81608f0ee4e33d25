/** Small network helpers: free ports, readiness polling, one-off HTTP checks. */
import { request, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as tlsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ManagedProcess } from './processes.js';

/** A port nothing listens on right now (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True once something accepts TCP connections on 127.0.0.1:port. */
export function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(1000, () => done(false));
  });
}

/**
 * Polls until the port accepts connections. Fails early if the process
 * exits (a proxy that cannot parse its config usually does).
 */
export async function waitForPort(port: number, proc: ManagedProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.hasExited) throw new Error(`exited before listening (${proc.exitDescription})`);
    if (await portAccepts(port)) return;
    await sleep(50);
  }
  throw new Error(`did not accept connections on port ${port} within ${timeoutMs} ms`);
}

export interface HttpReply {
  status: number;
  body: Buffer;
}

/** One request on a fresh connection, bounded by timeoutMs. */
export function httpRequest(
  port: number,
  path: string,
  options: { method?: string; body?: Buffer; timeoutMs?: number; tlsCa?: string } = {},
): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const requestOptions: RequestOptions = {
      host: '127.0.0.1',
      port,
      path,
      method: options.method ?? 'GET',
      agent: false,
      headers: options.body ? { 'content-length': String(options.body.length) } : {},
    };
    const send = (onResponse: (res: IncomingMessage) => void): ClientRequest =>
      options.tlsCa === undefined
        ? request(requestOptions, onResponse)
        : tlsRequest({ ...requestOptions, ca: readFileSync(options.tlsCa) }, onResponse);
    const req = send(
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.setTimeout(options.timeoutMs ?? 3000, () => req.destroy(new Error(`timeout on ${path}`)));
    req.on('error', reject);
    req.end(options.body);
  });
}
