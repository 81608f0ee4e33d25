/**
 * Long-lived clients for reload tests: a server-sent-events reader that
 * records every event and how the stream ended, and a minimal WebSocket
 * client (RFC 6455 handshake, masked text frames) for the demo backend's
 * /ws echo; and request bodies generated as they are read, with their sha256.
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { Readable } from 'node:stream';
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

/**
 * `total` bytes generated as they are read (never held in memory), in pieces
 * of `piece` bytes; `digest()` gives their sha256 once the stream ended.
 */
export function generatedBody(total: number, piece = 64 * 1024): { stream: Readable; digest(): string; sent(): number } {
  const base = randomBytes(piece);
  const hash = createHash('sha256');
  let sent = 0;
  let index = 0;
  const stream = new Readable({
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      const size = Math.min(piece, total - sent);
      const chunk = Buffer.from(base.subarray(0, size));
      chunk.writeUInt32BE(index++ >>> 0, 0);
      sent += size;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, digest: () => hash.digest('hex'), sent: () => sent };
}
