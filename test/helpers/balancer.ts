// A tiny round-robin TCP load balancer on 127.0.0.1 for multi-replica tests: each new client
// connection is piped to the next backend; a backend whose connect fails is skipped (the next
// one is tried), like an L4 balancer with passive health checks. It never retries once bytes flowed.
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface Backend {
  host?: string;
  port: number;
}

export interface Balancer {
  url: string;
  port: number;
  /** How many connections each backend (by port) was given. */
  readonly assigned: Map<number, number>;
  setBackends(backends: Backend[]): void;
  close(): Promise<void>;
}

export async function startBalancer(initial: Backend[] = []): Promise<Balancer> {
  let backends = [...initial];
  let next = 0;
  const assigned = new Map<number, number>();
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };

  const pipeTo = (client: Socket, attemptsLeft: number) => {
    if (attemptsLeft <= 0 || backends.length === 0 || client.destroyed) {
      client.destroy();
      return;
    }
    const backend = backends[next % backends.length] as Backend;
    next = (next + 1) % Math.max(1, backends.length);
    const upstream = connect({ host: backend.host ?? '127.0.0.1', port: backend.port });
    track(upstream);
    const onConnectError = () => {
      upstream.destroy();
      pipeTo(client, attemptsLeft - 1);
    };
    upstream.once('error', onConnectError);
    upstream.once('connect', () => {
      upstream.off('error', onConnectError);
      assigned.set(backend.port, (assigned.get(backend.port) ?? 0) + 1);
      // After the connect, a failure on either side ends both (the client sees a reset).
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
      upstream.once('close', () => client.destroy());
      client.once('close', () => upstream.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  };

  const server: Server = createServer({ pauseOnConnect: true }, (client) => {
    track(client);
    client.on('error', () => undefined);
    pipeTo(client, backends.length);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    assigned,
    setBackends(list) {
      backends = [...list];
      next = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
