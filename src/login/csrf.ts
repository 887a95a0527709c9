// Login CSRF: the form carries a token that is an HMAC of a random value held in a short-lived
// pre-login cookie, so a page on another site can neither read nor forge the pair.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { CSRF_COOKIE } from '../http.js';

export { CSRF_COOKIE };
export const CSRF_TTL_SECONDS = 3_600;

export interface CsrfTokens {
  /** A new random value for the pre-login cookie and the form token bound to it. */
  issue(): { cookie: string; token: string };
  verify(cookie: string | undefined, token: unknown): boolean;
  /**
   * SIGHUP reload of the session secrets: the first signs new forms, every one still verifies, so
   * a login page served just before a rotation can still be submitted after it.
   */
  replaceSecrets(secrets: readonly string[]): void;
}

/** The first secret signs, every secret verifies (as session cookies do). */
export function createCsrfTokens(secrets: string | readonly string[]): CsrfTokens {
  let keys: readonly string[] = typeof secrets === 'string' ? [secrets] : [...secrets];
  const mac = (secret: string, value: string) => createHmac('sha256', secret).update(`csrf:${value}`).digest('base64url');
  return {
    issue() {
      const cookie = randomBytes(24).toString('base64url');
      return { cookie, token: mac(keys[0] as string, cookie) };
    },
    verify(cookie, token) {
      if (!cookie || typeof token !== 'string' || cookie.length > 64 || token.length > 64) return false;
      const given = Buffer.from(token);
      let ok = false;
      for (const secret of keys) {
        const expected = Buffer.from(mac(secret, cookie));
        // Every secret is tried, so the time taken does not tell which one matched.
        if (expected.length === given.length && timingSafeEqual(expected, given)) ok = true;
      }
      return ok;
    },
    replaceSecrets(next) {
      keys = [...next];
    },
  };
}

/**
 * What a CSRF failure means when the pre-login cookie is missing on a plain-http request while
 * cookies are `Secure`: browsers do not keep Secure cookies set over http (RFC 6265bis §5.6; loopback
 * names excepted, they count as secure contexts), so every sign-in would look like an expired form.
 */
export const SECURE_COOKIE_OVER_HTTP =
  'Sign-in cannot work over plain http here: the gateway sets Secure cookies, which browsers drop on http://. ' +
  'Serve it over https (GATEWAY_PUBLIC_URL=https://…), or set GATEWAY_COOKIE_SECURE=false for plain-http testing.';

/** The browser saw `scheme://host` (GATEWAY_PUBLIC_URL when set): would it drop a Secure cookie? */
export function dropsSecureCookies(scheme: string, host: string): boolean {
  return scheme.replace(/:$/, '') === 'http' && !isLoopbackName(host);
}

function isLoopbackName(host: string): boolean {
  const name = host.toLowerCase().replace(/^\[|\]$/g, '');
  return name === 'localhost' || name.endsWith('.localhost') || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}
