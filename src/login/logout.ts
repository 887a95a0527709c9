// The one logout: `GET|POST <prefix>/logout` (login/routes.ts) and an app's own logout paths
// (GATEWAY_LOGOUT_PATHS, on the proxy, proxy/routes.ts) end a session the same way, audited the same way.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/config.js';
import { clearSessionCookie, isSameOrigin, wantsJson } from '../http.js';
import { PAGE_STYLE_HASH, renderLogoutConfirmPage } from '../pages.js';
import type { SessionManager } from '../session/manager.js';

export interface Logout {
  /** The gateway's own logout route. From another site: a page asking to confirm (JSON: 403). */
  route(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply>;
  /** A legacy `<a href="/logout">` on the app: end the session here (the app never sees it). From another site: to the route. */
  fromAppPath(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply>;
}

export function createLogout({ config, sessions }: { config: Config; sessions: SessionManager }): Logout {
  const logoutPath = `${config.authPrefix}/logout`;
  const loggedOut = `${config.authPrefix}/login?logged_out=1`;

  /** End the session the cookie names (on every replica), clear the cookie, audit, go to the login page. */
  const endSession = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const cookie = request.cookies[config.cookieName];
    const validation = await sessions.validate(cookie).catch(() => null);
    await sessions.destroy(cookie);
    clearSessionCookie(reply, config);
    const user = validation?.outcome === 'valid' ? validation.session.record.user : null;
    request.log.info({ audit: 'logout', user, ip: request.ip, outcome: user ? 'success' : 'no_session' }, 'logout');
    return reply.code(303).header('location', loggedOut).send();
  };

  return {
    async route(request, reply) {
      // Logout CSRF: a link, image or form on another site must not sign the user out. Browsers say
      // where a request comes from (Sec-Fetch-Site, Origin); the user gets a button instead.
      if (!isSameOrigin(request, config)) {
        request.log.info({ audit: 'logout', ip: request.ip, outcome: 'cross_site_refused' }, 'logout');
        if (wantsJson(request)) return reply.code(403).send({ error: 'Cross-site sign-out requests are refused.' });
        reply.header('content-security-policy', `default-src 'none'; style-src ${PAGE_STYLE_HASH}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`);
        return reply.code(200).type('text/html; charset=utf-8').send(renderLogoutConfirmPage(logoutPath));
      }
      return endSession(request, reply);
    },
    async fromAppPath(request, reply) {
      // From another site: not here; the gateway's own logout asks the user to confirm.
      if (!isSameOrigin(request, config)) return reply.redirect(logoutPath, 303);
      return endSession(request, reply);
    },
  };
}
