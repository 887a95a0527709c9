// The admin listener's session API (SPEC section 6), on only with GATEWAY_ADMIN_TOKEN:
//   GET    /sessions/<user>   the user's sessions, as `sessions list` prints them (a JSON list)
//   DELETE /sessions/<user>   revoke them all, on every replica, with the CLI's audit line
// Every route in this scope, including those other features register through `routes`, answers
// 401 with one fixed body to a wrong or missing token, before anything about the user is looked up.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { SessionManager } from '../session/manager.js';
import { summariseSession } from '../session/summary.js';
import { identityValueProblem } from '../users/user-admin.js';

export interface SessionApiOptions {
  /** GATEWAY_ADMIN_TOKEN. */
  token: string;
  sessions: Pick<SessionManager, 'listByUser' | 'revokeUser'>;
  /** Audit lines go here (the gateway's logger); the token never does. */
  logger: Logger;
  /**
   * More routes behind the same token, registered inside the authenticated scope, e.g. API
   * tokens' `DELETE /tokens/<user>/<name>`. They may use `adminUserName` to check a name.
   */
  routes?: Array<(scope: FastifyInstance) => void>;
}

/** As long as a sign-in accepts (login routes): a longer name names nobody. */
const MAX_USER_NAME_LENGTH = 256;
const UNAUTHORISED = { error: 'unauthorized' };

export async function sessionApi(app: FastifyInstance, options: SessionApiOptions): Promise<void> {
  const { sessions, logger } = options;
  // Both sides hashed first: equal lengths for timingSafeEqual, and the comparison time says
  // nothing about the token's length or any prefix of it.
  const expected = digest(options.token);

  app.addHook('onRequest', async (request, reply) => {
    const presented = bearerToken(request.headers.authorization);
    const matches = timingSafeEqual(digest(presented ?? ''), expected);
    if (presented !== null && matches) return;
    logger.warn({ audit: 'admin_api', ip: request.ip, method: request.method, outcome: presented === null ? 'missing_token' : 'wrong_token' }, 'admin API request refused');
    return reply.code(401).header('www-authenticate', 'Bearer realm="session-gateway admin"').send(UNAUTHORISED);
  });
  app.addHook('onSend', async (_request, reply) => {
    reply.header('cache-control', 'no-store');
  });

  app.get('/sessions/:user', async (request, reply) => {
    const user = adminUserName(request, reply);
    if (user === null) return reply;
    const listed = await storeCall(reply, () => sessions.listByUser(user));
    if (listed === null) return reply;
    logger.info({ audit: 'session_list', user, sessions: listed.length, by: 'admin_api', ip: request.ip, outcome: 'success' }, 'sessions listed');
    return reply.send(listed.map(summariseSession));
  });

  app.delete('/sessions/:user', async (request, reply) => {
    const user = adminUserName(request, reply);
    if (user === null) return reply;
    const revoked = await storeCall(reply, () => sessions.revokeUser(user));
    if (revoked === null) {
      logger.warn({ audit: 'revocation', user, by: 'admin_api', ip: request.ip, outcome: 'error' }, 'sessions not revoked: session store unavailable');
      return reply;
    }
    // The CLI's revocation line (`by: 'cli'`), from the admin API.
    logger.info({ audit: 'revocation', user, sessions: revoked, by: 'admin_api', ip: request.ip, outcome: 'success' }, 'sessions revoked');
    return reply.send({ user, revoked });
  });

  for (const register of options.routes ?? []) register(app);
}

/**
 * The `:user` parameter, or null after answering 400: empty, too long, control characters, or
 * leading/trailing whitespace (such a name is nobody's; SPEC 4).
 */
export function adminUserName(request: FastifyRequest, reply: FastifyReply): string | null {
  const user = (request.params as { user?: unknown }).user;
  const problem = typeof user !== 'string' ? 'user name is missing' : user.length > MAX_USER_NAME_LENGTH ? `user name is longer than ${MAX_USER_NAME_LENGTH} characters` : identityValueProblem('user name', user);
  if (problem === null && typeof user === 'string') return user;
  void reply.code(400).send({ error: problem });
  return null;
}

/** A store that cannot answer is a 503 with a clear body, never a 500. */
async function storeCall<T>(reply: FastifyReply, call: () => Promise<T>): Promise<T | null> {
  try {
    return await call();
  } catch {
    void reply.code(503).send({ error: 'session store unavailable' });
    return null;
  }
}

function bearerToken(header: string | undefined): string | null {
  const match = /^Bearer +([\x21-\x7e]+) *$/i.exec(header ?? '');
  return match?.[1] ?? null;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
