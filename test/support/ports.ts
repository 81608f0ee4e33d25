/** Ports for test servers: free ones to put in configs, listening, and closing with open connections. */
import net from 'node:net';

/** A port that was free a moment ago: listen on 0, read the port, close. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const [port] = await freePorts(1, host);
  return port!;
}

/** `n` distinct free ports: all are held open together before any is released, so none repeats. */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const servers = Array.from({ length: n }, () => net.createServer());
  const ports = await Promise.all(servers.map((server) => listenOn(server, 0, host)));
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/** Starts `server` (net, http, https or tls) on `port` (0: ephemeral) and resolves with the port bound. */
export function listenOn(server: net.Server, port = 0, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/**
 * The open sockets of a test server, so it can be closed at once: `server.close()`
 * alone waits for every connection to end. Errors on tracked sockets are
 * swallowed, because peers resetting is what these servers are for.
 */
export class OpenSockets {
  private readonly sockets = new Set<net.Socket>();

  add(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
  }

  /** Stops `server` listening, destroys every tracked socket, and resolves once the server has closed. */
  closeServer(server: net.Server): Promise<void> {
    return new Promise((resolve) => {
      server.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
  }
}
