// An echo app standing in for the legacy upstream: answers every request with what it received
// (method, url, headers, body) as JSON, so tests can assert exactly what the gateway forwarded.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Echo {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** Raw header pairs as sent on the wire (to see duplicates and exact spellings). */
  rawHeaders: string[];
  body: string;
}

export interface EchoUpstream {
  url: string;
  port: number;
  /** Every request the upstream received, in order. */
  received: Echo[];
  close(): Promise<void>;
}

export type UpstreamHandler = (echo: Echo, res: import('node:http').ServerResponse) => boolean | void;

/** `handler` may answer itself (return true), e.g. to redirect or to stall for timeout tests. */
export async function startEchoUpstream(handler?: UpstreamHandler): Promise<EchoUpstream> {
  const received: Echo[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const echo: Echo = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString('utf8') };
      received.push(echo);
      if (handler?.(echo, res)) return;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(echo));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
