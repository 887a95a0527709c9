// A real WebSocket app standing in for the legacy upstream (built with `ws`, like the gateway),
// and the client side of the tests: open a socket through the gateway, read what arrives, see
// how it closed, or send a raw upgrade request exactly as written.
import { createServer, request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer, type ClientOptions, type RawData } from 'ws';

export interface Handshake {
  url: string;
  headers: IncomingHttpHeaders;
  /** Raw header pairs as sent on the wire (exact spellings, duplicates). */
  rawHeaders: string[];
}

export interface WebSocketUpstream {
  url: string;
  /** Every upgrade request the app received, in order (refused ones included). */
  handshakes: Handshake[];
  /** Plain HTTP requests the app received. */
  requests: Handshake[];
  /** How each app-side socket ended. */
  closes: Array<{ code: number; reason: string }>;
  close(): Promise<void>;
}

/**
 * Greets every socket with `hello`, answers `text` with `echo:text` (binary stays binary), and
 * `whoami` with the handshake it saw. Refuses upgrades to /refuse/* with 403; picks the
 * subprotocol `chat.v1` when offered. Plain HTTP requests get 200 and their own description.
 */
export async function startWebSocketUpstream(): Promise<WebSocketUpstream> {
  const handshakes: Handshake[] = [];
  const requests: Handshake[] = [];
  const closes: Array<{ code: number; reason: string }> = [];
  const server = createServer((req, res) => {
    requests.push({ url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders });
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  });
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (offered) => (offered.has('chat.v1') ? 'chat.v1' : false) });
  server.on('upgrade', (req, socket, head) => {
    const handshake = { url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders };
    handshakes.push(handshake);
    if (handshake.url.startsWith('/refuse')) {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data, isBinary) => {
        if (!isBinary && data.toString() === 'whoami') ws.send(JSON.stringify(handshake));
        else if (isBinary) ws.send(data, { binary: true });
        else ws.send(`echo:${data.toString()}`);
      });
      ws.on('close', (code, reason) => closes.push({ code, reason: reason.toString() }));
      ws.send('hello');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    handshakes,
    requests,
    closes,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A client socket with everything it received queued, so no message is missed between awaits. */
export interface TestSocket {
  ws: WebSocket;
  /** The next message (text as a string, binary as a Buffer), waiting up to `timeoutMs`. */
  next(timeoutMs?: number): Promise<string | Buffer>;
  /** Resolves with how the socket closed (at most `timeoutMs` from now, else rejects). */
  closed(timeoutMs?: number): Promise<{ code: number; reason: string }>;
}

export class HandshakeRefused extends Error {
  constructor(readonly status: number, readonly headers: IncomingHttpHeaders, readonly body: string) {
    super(`upgrade refused with ${status}`);
  }
}

/** Opens a socket (ws:// URL); rejects with HandshakeRefused when the answer is not 101. */
export function openSocket(url: string, options: ClientOptions & { protocols?: string[] } = {}): Promise<TestSocket> {
  const { protocols, ...clientOptions } = options;
  const ws = new WebSocket(url, protocols ?? [], clientOptions);
  const queue: Array<string | Buffer> = [];
  const waiters: Array<(m: string | Buffer) => void> = [];
  let closedWith: { code: number; reason: string } | null = null;
  const closeWaiters: Array<(c: { code: number; reason: string }) => void> = [];
  ws.on('message', (data: RawData, isBinary) => {
    const message = isBinary ? (data as Buffer) : data.toString();
    const waiter = waiters.shift();
    if (waiter) waiter(message);
    else queue.push(message);
  });
  ws.on('close', (code, reason) => {
    closedWith = { code, reason: reason.toString() };
    closeWaiters.splice(0).forEach((resolve) => resolve(closedWith as { code: number; reason: string }));
  });
  const socket: TestSocket = {
    ws,
    next: (timeoutMs = 5_000) =>
      new Promise((resolve, reject) => {
        const queued = queue.shift();
        if (queued !== undefined) return resolve(queued);
        const timer = setTimeout(() => reject(new Error(`no message within ${timeoutMs} ms`)), timeoutMs);
        waiters.push((m) => {
          clearTimeout(timer);
          resolve(m);
        });
      }),
    closed: (timeoutMs = 5_000) =>
      new Promise((resolve, reject) => {
        if (closedWith) return resolve(closedWith);
        const timer = setTimeout(() => reject(new Error(`socket still open after ${timeoutMs} ms`)), timeoutMs);
        closeWaiters.push((c) => {
          clearTimeout(timer);
          resolve(c);
        });
      }),
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(socket));
    ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => reject(new HandshakeRefused(res.statusCode ?? 0, res.headers, Buffer.concat(chunks).toString('utf8'))));
    });
    ws.on('error', (err) => reject(err));
  });
}

/** The HTTP status an upgrade attempt got (101 when it was accepted), with the refusal's body. */
export async function upgradeStatus(url: string, options: ClientOptions & { protocols?: string[] } = {}): Promise<{ status: number; body: string }> {
  try {
    const socket = await openSocket(url, options);
    socket.ws.terminate();
    return { status: 101, body: '' };
  } catch (err) {
    if (err instanceof HandshakeRefused) return { status: err.status, body: err.body };
    throw err;
  }
}

/** Sends an upgrade request exactly as given (no client library fixing it up). */
export function rawUpgrade(
  baseUrl: string,
  target: string,
  options: { method?: string; headers: OutgoingHttpHeaders | Array<[string, string]>; body?: string },
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const { hostname, port } = new URL(baseUrl);
  const headers = Array.isArray(options.headers) ? options.headers.flat() : options.headers;
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, path: target, method: options.method ?? 'GET', headers: headers as OutgoingHttpHeaders, agent: false });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' });
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** ws:// form of a gateway's http:// URL. */
export function wsUrl(httpUrl: string, path: string): string {
  return `${httpUrl.replace(/^http/, 'ws')}${path}`;
}
