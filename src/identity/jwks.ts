// GET <prefix>/jwks.json: the public keys that verify X-Gateway-Identity tokens (RFC 7517 JWK Set).
// Public and cacheable for a short time; the same document on every replica sharing the key files.
// Not registered in HMAC mode (nothing public to publish) or when signing is off: those get the
// prefix's 404.
import type { FastifyInstance } from 'fastify';
import type { GatewayDeps } from '../context.js';

/**
 * Short, so a key added for rotation reaches apps within minutes; apps' JWKS clients also refetch
 * when they meet an unknown `kid`.
 */
const JWKS_MAX_AGE_SECONDS = 300;

export async function jwksRoute(app: FastifyInstance, deps: GatewayDeps): Promise<void> {
  const tokens = deps.identityTokens;
  if (!tokens?.jwksJson) return;
  // Read per request: a SIGHUP reload may publish a new key set (the algorithm, hence the mode, stays).
  app.get('/jwks.json', async (_request, reply) =>
    reply
      .header('cache-control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`)
      .header('x-content-type-options', 'nosniff')
      .type('application/json')
      .send(tokens.jwksJson),
  );
}
