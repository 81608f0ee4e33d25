/**
 * After a 101 Switching Protocols (WebSocket and other upgrades) the two
 * sockets are joined as a raw byte relay with backpressure both ways. Either
 * side closing ends the other after its pending bytes are flushed; an error
 * on either side destroys both.
 */
import type { Socket } from 'node:net';

/** Sockets currently tunnelled, so shutdown can close them at its deadline. */
export const openTunnels = new Set<Socket>();

export function startTunnel(client: Socket, clientBuffered: Buffer | null, upstream: Socket, upstreamBuffered: Buffer | null): void {
  openTunnels.add(client);
  if (upstreamBuffered !== null && upstreamBuffered.length > 0) client.write(upstreamBuffered);
  if (clientBuffered !== null && clientBuffered.length > 0) upstream.write(clientBuffered);
  relay(client, upstream);
  relay(upstream, client);
  const destroyBoth = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', destroyBoth);
  upstream.on('error', destroyBoth);
  client.on('close', () => {
    openTunnels.delete(client);
    upstream.destroy();
  });
  upstream.on('close', () => client.end());
  client.resume();
  upstream.resume();
}

function relay(from: Socket, to: Socket): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
  from.on('end', () => to.end());
}
