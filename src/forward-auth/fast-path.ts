// The common forward-auth call answered before fastify's router: `GET /_auth/verify` from a proxy
// that names the original request, for a session the local cache holds, that a rule allows.
// Behind nginx every request of the app is one such call; measured straight at the endpoint,
// fastify's routing, hooks, per-request logger and reply machinery cost more than the decision
// itself (bench/RESULTS.md). Everything else — no or an invalid session, a refusal, an unnamed
// request, a WebSocket handshake, access-log lines wanted — goes on to the fastify route
// (verify.ts), which answers it exactly as before; a verdict reached here is handed over with the
// request, so its session is never validated, touched or counted twice.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fastifyCookie } from '@fastify/cookie';
import { requestObserver } from '../admin/metrics.js';
import type { Verdict } from '../access/gate.js';
import type { GatewayDeps } from '../context.js';
import { hostRefusal } from '../http.js';
import { originalRequest } from './original-request.js';
import type { Verifier } from './verifier.js';

export interface VerifyFastPath {
  /** Answers the request itself or passes it to `next` (fastify); never both. */
  handle(req: IncomingMessage, res: ServerResponse, next: (req: IncomingMessage, res: ServerResponse) => void): void;
  /** From now on every request goes to fastify (which answers 503 while closing). */
  close(): void;
}

export function createVerifyFastPath(deps: GatewayDeps, verifier: Verifier): VerifyFastPath {
  const { config } = deps;
  const verifyPath = `${config.authPrefix}/verify`;
  const cookiePrefix = `${config.cookieName}=`;
  const observe = requestObserver(deps.metrics.requestDuration);
  // Only when verify logs nothing on success: an access-log line is fastify's to write.
  let enabled = verifier.quiet;

  return {
    close() {
      enabled = false;
    },
    handle(req, res, next) {
      if (!enabled || req.method !== 'GET' || req.url !== verifyPath || req.headers['sec-websocket-key'] !== undefined) return next(req, res);
      if (hostRefusal(req, config) !== null) return next(req, res); // the route answers 400
      const cookieHeader = req.headers.cookie;
      if (cookieHeader === undefined || !cookieHeader.includes(cookiePrefix)) return next(req, res);
      const original = originalRequest({ headers: req.headers, peerTrusted: verifier.peerTrusted(req.socket), path: verifyPath });
      if (!original.ok || !original.request.known) return next(req, res);

      const started = performance.now();
      // The same parser (and decoding) as @fastify/cookie gives the route; anything odd is the route's.
      let cookies: Record<string, string | undefined>;
      try {
        cookies = fastifyCookie.parse(cookieHeader);
      } catch {
        return next(req, res);
      }
      const verdict = verifier.decide(original.request, cookies, req);
      let passedOn = false;
      const passOn = () => {
        passedOn = true;
        verifier.handOver(req, verdict);
        next(req, res);
      };
      verdict
        .then(
          (decided: Verdict) => {
            // Only an allowed request is answered here; every other verdict is the route's to render.
            if (decided.kind !== 'allow') return passOn();
            res.writeHead(204, verifier.allowHeaders(decided, req));
            res.end();
            observe('GET', 204, (performance.now() - started) / 1_000);
          },
          // A store error is answered (503) and logged by the route's error handling.
          passOn,
        )
        // Never an unhandled rejection (it would end the process): whatever failed above, the
        // route answers if nothing was sent yet, with its own error handling.
        .catch(() => (passedOn || res.headersSent ? res.destroy() : passOn()));
    },
  };
}
