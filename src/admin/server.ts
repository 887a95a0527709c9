// The admin listener (SPEC section 6): liveness, readiness with each dependency reported,
// Prometheus metrics, and (with GATEWAY_ADMIN_TOKEN) the session API. Kept on its own port so it
// is never exposed through the proxy.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Metrics } from './metrics.js';
import { sessionApi, type SessionApiOptions } from './session-api.js';

export interface DependencyCheck {
  name: 'redis' | 'postgres';
  /** When false, the dependency being down is reported but does not fail readiness. */
  critical: boolean;
  check(): Promise<void>;
}

const CHECK_TIMEOUT_MS = 1_000;

export function buildAdminApp(options: {
  metrics: Metrics;
  checks: DependencyCheck[];
  isDraining: () => boolean;
  beforeScrape?: () => void;
  /** The bearer-token API (`/sessions/<user>`, and routes other features add); absent: off. */
  sessionApi?: SessionApiOptions | null;
}): FastifyInstance {
  // No request logging here: nothing on this listener may put an Authorization header in a log.
  // maxParamLength: a too-long user name gets the API's own 400, not the router's 414.
  const app = Fastify({ logger: false, routerOptions: { maxParamLength: 1_024 } });

  if (options.sessionApi) void app.register(sessionApi, options.sessionApi);

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const results = await Promise.all(options.checks.map(async (dep) => ({ dep, up: await answers(dep.check) })));
    const body: Record<string, string> = {};
    for (const { dep, up } of results) body[dep.name] = up ? 'up' : dep.critical ? 'down' : 'down (logins degraded)';
    const criticalDown = results.filter((r) => !r.up && r.dep.critical).map((r) => r.dep.name);
    if (options.isDraining()) return reply.code(503).send({ status: 'shutting down', ...body });
    if (criticalDown.length > 0) return reply.code(503).send({ status: `not ready: ${criticalDown.join(', ')} unavailable`, ...body });
    return reply.code(200).send({ status: 'ready', ...body });
  });

  app.get('/metrics', async (_request, reply) => {
    options.beforeScrape?.();
    const text = await options.metrics.registry.metrics();
    return reply.type(options.metrics.registry.contentType).send(text);
  });

  return app;
}

async function answers(check: () => Promise<void>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timeout')), CHECK_TIMEOUT_MS);
  });
  try {
    await Promise.race([check(), timeout]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
