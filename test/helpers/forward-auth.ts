// A forward-auth call to /_auth/verify as a proxy makes it, from a chosen local address (tests
// trust 127.0.0.1 and use 127.0.0.2 as an untrusted peer).
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { TestGateway } from './gateway.js';

export interface VerifyAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export function callVerify(target: TestGateway, headers: OutgoingHttpHeaders, options: { from?: string; method?: string; body?: string } = {}): Promise<VerifyAnswer> {
  const { hostname, port } = new URL(target.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: hostname, port, path: '/_auth/verify', method: options.method ?? 'GET', headers, localAddress: options.from ?? '127.0.0.1', agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}
