// Which HTTP methods the gateway accepts (SPEC 4): every method Node's parser accepts is routed
// and proxied with the same checks, WebDAV and CalDAV included (PROPFIND, PROPPATCH, MKCOL, COPY,
// MOVE, LOCK, UNLOCK, REPORT, MKCALENDAR, SEARCH, ...), except TRACE, which echoes the request
// (cookies included) back to a script, and CONNECT, which asks for a tunnel: both get 405.
import { METHODS, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

const REFUSED_METHODS = new Set(['TRACE', 'CONNECT']);
/** What the proxy routes register (and the Allow header of a 405 lists). */
export const PROXIED_METHODS: readonly string[] = METHODS.filter((method) => !REFUSED_METHODS.has(method));
export const ALLOWED_METHODS_HEADER = PROXIED_METHODS.join(', ');

export function isRefusedMethod(method: string): boolean {
  return REFUSED_METHODS.has(method);
}

/**
 * fastify routes only the common methods unless told; call before any route is registered, so
 * catch-alls such as the gateway's own `/_auth/*` 404 cover every method too. Any WebDAV method
 * may carry a body (PROPFIND, LOCK, REPORT do), which then streams to the app like a POST's.
 */
export function routeEveryMethod(app: FastifyInstance): void {
  const known = new Set(app.supportedMethods);
  for (const method of PROXIED_METHODS) if (!known.has(method)) app.addHttpMethod(method, { hasBody: true });
}

/** Node hands CONNECT to a 'connect' listener, never to fastify; without one it drops the socket. */
export function refuseTunnels(server: Server): void {
  server.on('connect', (_request, socket: Socket) => {
    socket.end(`HTTP/1.1 405 Method Not Allowed\r\nAllow: ${ALLOWED_METHODS_HEADER}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
  });
}
