// The built-in demo upstream of the embedded default mode: a real HTTP server on loopback, so
// the demo goes through exactly the proxy path a real app would, and shows what it receives.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { renderWhoamiPage } from '../pages.js';

export interface WhoamiServer {
  url: URL;
  close(): Promise<void>;
}

export async function startWhoamiServer(logoutPath: string): Promise<WhoamiServer> {
  const server: Server = createServer((req, res) => {
    const body = renderWhoamiPage({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, logoutPath });
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: new URL(`http://127.0.0.1:${port}`),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
