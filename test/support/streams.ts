/**
 * Long-lived clients for reload tests: a server-sent-events reader that
 * records every event and how the stream ended, and a minimal WebSocket
 * client (RFC 6455 handshake, masked text frames) for the demo backend's
 * /ws echo.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { decodeWebSocketFrame, websocketAccept, WebSocketOpcode } from '../../src/demo/backend.js';
import { openRequest } from './http-client.js';

export interface SseStream {
  readonly events: string[];
  /** Resolves when the stream ends: `complete` is true for a clean end of a chunked body, false for a cut. */
  readonly done: Promise<{ complete: boolean; error?: string }>;
  close(): void;
}

export async function openSse(port: number, path: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const res = await openRequest({ port, path, headers, timeoutMs: 60_000 });
  if (res.statusCode !== 200) throw new Error(`SSE ${path}: status ${res.statusCode}`);
  const events: string[] = [];
  let buffer = '';
  const done = new Promise<{ complete: boolean; error?: string }>((resolve) => {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        for (const line of block.split('\n')) if (line.startsWith('data: ')) events.push(line.slice(6));
      }
    });
    res.on('end', () => resolve({ complete: res.complete }));
    res.on('error', (err) => resolve({ complete: false, error: err.message }));
    res.on('close', () => resolve({ complete: res.complete }));
  });
  return { events, done, close: () => res.destroy() };
}

export interface WebSocketClient {
  /** Sends a text frame and resolves with the next text frame received. */
  echo(text: string, timeoutMs?: number): Promise<string>;
  /** Resolves when the connection closes. */
  readonly closed: Promise<void>;
  readonly isClosed: boolean;
  close(): void;
}

export function openWebSocket(port: number, path: string, host = 'localhost'): Promise<WebSocketClient> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const key = randomBytes(16).toString('base64');
    let buffer = Buffer.alloc(0);
    let upgraded = false;
    let isClosed = false;
    const waiters: ((text: string) => void)[] = [];
    let markClosed: () => void = () => undefined;
    const closed = new Promise<void>((r) => (markClosed = r));
    socket.on('connect', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!upgraded) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffer.subarray(0, end).toString('latin1');
        buffer = buffer.subarray(end + 4);
        if (!/^HTTP\/1\.1 101/.test(head) || !head.includes(websocketAccept(key))) {
          socket.destroy();
          return reject(new Error(`no WebSocket upgrade: ${head.split('\r\n')[0]}`));
        }
        upgraded = true;
        resolve(client);
      }
      for (;;) {
        const frame = decodeWebSocketFrame(buffer);
        if (frame === undefined) break;
        buffer = buffer.subarray(frame.frameLength);
        if (frame.opcode === WebSocketOpcode.text) waiters.shift()?.(frame.payload.toString('utf8'));
      }
    });
    const onClose = (): void => {
      isClosed = true;
      markClosed();
      if (!upgraded) reject(new Error('connection closed before the upgrade'));
    };
    socket.on('close', onClose);
    socket.on('error', () => undefined);
    const client: WebSocketClient = {
      echo(text, timeoutMs = 5000) {
        return new Promise((res, rej) => {
          if (isClosed) return rej(new Error('WebSocket closed'));
          const timer = setTimeout(() => rej(new Error(`no echo of "${text}" within ${timeoutMs} ms`)), timeoutMs);
          waiters.push((t) => {
            clearTimeout(timer);
            res(t);
          });
          socket.write(maskedFrame(WebSocketOpcode.text, Buffer.from(text)));
        });
      },
      closed,
      get isClosed() {
        return isClosed;
      },
      close: () => socket.destroy(),
    };
  });
}

function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const masked = Buffer.from(payload);
  for (let i = 0; i < masked.length; i++) masked[i]! ^= mask[i % 4]!;
  const len = payload.length;
  const header = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len]) : Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 0xff]);
  return Buffer.concat([header, mask, masked]);
}
