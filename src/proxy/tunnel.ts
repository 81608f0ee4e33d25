/**
 * After a 101 Switching Protocols (WebSocket and other upgrades) the two
 * sockets are joined as a raw byte relay with backpressure both ways.
 *
 * When either side closes (EOF), its last bytes are flushed to the other and
 * then both connections are closed, as nginx does for upgraded connections
 * (ngx_http_upstream_process_upgraded): a tunnel is not left half-open
 * waiting for a peer that may never close its side (a WebSocket server that
 * does not answer a client's FIN would otherwise hold both connections, and a
 * graceful stop, until the read timeout). An error on either side destroys
 * both.
 */
import type { Socket } from 'node:net';

/** Sockets currently tunnelled, so shutdown can close them at its deadline. */
export const openTunnels = new Set<Socket>();

export function startTunnel(client: Socket, clientBuffered: Buffer | null, upstream: Socket, upstreamBuffered: Buffer | null): void {
  openTunnels.add(client);
  if (upstreamBuffered !== null && upstreamBuffered.length > 0) client.write(upstreamBuffered);
  if (clientBuffered !== null && clientBuffered.length > 0) upstream.write(clientBuffered);
  const destroyBoth = (): void => {
    client.destroy();
    upstream.destroy();
  };
  relay(client, upstream, destroyBoth);
  relay(upstream, client, destroyBoth);
  client.on('error', destroyBoth);
  upstream.on('error', destroyBoth);
  client.on('close', () => {
    openTunnels.delete(client);
    upstream.destroy();
  });
  upstream.on('close', () => client.end(destroyBoth));
  client.resume();
  upstream.resume();
}

function relay(from: Socket, to: Socket, closeBoth: () => void): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
  // EOF: what was read is written out (end's callback runs once it is all flushed), then both close.
  from.on('end', () => to.end(closeBoth));
}
