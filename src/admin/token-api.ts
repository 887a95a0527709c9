// `DELETE /tokens/<user>/<name>` on the admin listener (SPEC 6), behind GATEWAY_ADMIN_TOKEN like the
// session API it is registered into (session-api.ts answers 401 before this runs): the token is
// deleted and every replica told at once, with the CLI's audit line (`by: admin_api`).
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { TokenInvalidation } from '../tokens/invalidation.js';
import { tokenNameProblem } from '../tokens/token.js';
import type { TokenStore } from '../tokens/token-store.js';
import { adminUserName } from './session-api.js';

export function tokenApiRoutes(options: { store: TokenStore; invalidation: TokenInvalidation; logger: Logger }): (scope: FastifyInstance) => void {
  const { store, invalidation, logger } = options;
  return (scope) => {
    scope.delete('/tokens/:user/:name', async (request, reply) => {
      const user = adminUserName(request, reply);
      if (user === null) return reply;
      const name = (request.params as { name?: unknown }).name;
      const problem = typeof name !== 'string' ? 'token name is missing' : tokenNameProblem(name);
      if (problem !== null || typeof name !== 'string') return reply.code(400).send({ error: problem });
      let tokenHash: string | null;
      try {
        tokenHash = await store.revoke(user, name);
        if (tokenHash !== null) await invalidation.tokenRevoked(tokenHash);
      } catch {
        logger.warn({ audit: 'revocation', user, token: name, by: 'admin_api', ip: request.ip, outcome: 'error' }, 'API token not revoked: store unavailable');
        return reply.code(503).send({ error: 'token store unavailable' });
      }
      if (tokenHash === null) return reply.code(404).send({ error: 'no such token' });
      logger.info({ audit: 'revocation', user, token: name, by: 'admin_api', ip: request.ip, outcome: 'success' }, 'API token revoked');
      return reply.send({ user, token: name, revoked: true });
    });
  };
}
