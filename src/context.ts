// What the routes and hooks share, built once at start-up by the server (or a test) and handed
// to buildApp. Nothing in here is created per request.
import type { Logger } from 'pino';
import type { Metrics } from './admin/metrics.js';
import type { CsrfTokens } from './login/csrf.js';
import type { ReplaceableLoginPage } from './login/login-page.js';
import type { LoginThrottle } from './login/throttle.js';
import type { UserStore } from './users/user-store.js';
import type { Config } from './config/config.js';
import type { IdentityTokens } from './identity/signed-identity.js';
import type { ActiveSession, SessionManager } from './session/manager.js';
import type { TokenServices } from './tokens/services.js';
import type { Tracing } from './tracing/index.js';
import type { Gate, Principal } from './access/gate.js';
import type { MfaService } from './mfa/service.js';
import type { PendingStore } from './mfa/pending.js';
import type { WebAuthn } from './mfa/webauthn.js';

/** The second factor (GATEWAY_MFA optional or required). */
export interface MfaDeps {
  service: MfaService;
  /** Sign-ins whose password was right and whose second step is still to come. */
  pending: PendingStore;
  /** Wrong codes and failed passkey assertions, counted like wrong passwords (same limits, counters of their own). */
  throttle: LoginThrottle;
  /** Passkeys: registration and assertion, challenges kept server-side. */
  webauthn: WebAuthn;
}

export interface GatewayDeps {
  config: Config;
  sessions: SessionManager;
  users: UserStore;
  /** API tokens and HTTP Basic: the Authorization header as a credential (SPEC 9); absent: no such credentials. */
  tokens?: TokenServices;
  throttle: LoginThrottle;
  csrf: CsrfTokens;
  metrics: Metrics;
  logger: Logger;
  /** Where requests are forwarded (GATEWAY_UPSTREAM, or the embedded mode's whoami app); null: forward-auth only. */
  upstream: URL | null;
  /** The signed X-Gateway-Identity token; null when GATEWAY_IDENTITY_JWT is off. */
  identityTokens: IdentityTokens | null;
  /** null: GATEWAY_MFA=off. */
  mfa: MfaDeps | null;
  /** The login page with the operator's branding, replaced on a SIGHUP reload; absent: config's branding, fixed. */
  loginPage?: ReplaceableLoginPage;
  /** OpenTelemetry tracing (OTEL_EXPORTER_OTLP_ENDPOINT); absent or null: off. */
  tracing?: Tracing | null;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The access decision every door asks (access/gate.ts); `replaceRules` swaps its rules. */
    accessGate: Gate;
  }
  interface FastifyRequest {
    /** The validated session, once the auth hook has run; null for anonymous requests. */
    session: ActiveSession | null;
    /** Who the access gate recognised (a session, later a token …), once it has run; null: nobody. */
    principal: Principal | null;
    /** Path after normalisation (what was authorised and what the upstream receives). */
    normalisedPath: string;
    /** performance.now() when routed: the duration of a request that never gets a response. */
    receivedAt: number;
  }
}
