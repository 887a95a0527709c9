// The passkey ceremonies as JSON (SPEC section 9), for the page's script and for scripts and tests:
//
//   POST <prefix>/mfa/webauthn/register/options  → options for navigator.credentials.create()
//   POST <prefix>/mfa/webauthn/register          {credential, rd?}  → the new session (+ recovery codes, first factor)
//   POST <prefix>/mfa/webauthn/options           → options for navigator.credentials.get()
//   POST <prefix>/mfa/webauthn                   {credential, rd?}  → the new session (amr: pwd + hwk)
//
// Under <prefix>/mfa, so the pending sign-in's cookie reaches them. JSON only (a form cannot send
// it across origins without a preflight), same origin only, and the answer to a ceremony is
// throttled like a code. The relying party is the gateway's public origin (GATEWAY_PUBLIC_URL, else
// the request's checked Host), its RP ID that origin's host name.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { GatewayDeps, MfaDeps } from '../context.js';
import { GatewayError } from '../errors.js';
import { publicOrigin, wantsJson } from '../http.js';
import { describeClient } from '../session/client.js';
import type { RelyingParty } from '../mfa/webauthn.js';
import { secondStepPath, type SecondStepKit, type Subject } from './second-step.js';
import { forgetUserCredentials } from '../tokens/services.js';

/** A WebAuthn answer is a few kilobytes; nothing here needs the gateway's 1 MiB. */
const BODY_LIMIT_BYTES = 64 * 1024;
const MAX_NAME_LENGTH = 64;
const PASSKEY_FAILED = 'The passkey did not work. Try again, or use a code.';

export function webauthnPaths(prefix: string) {
  const base = `${prefix}/mfa/webauthn`;
  return { registerOptions: `${base}/register/options`, register: `${base}/register`, options: `${base}/options`, assert: base };
}

const unavailable = (cause: unknown) => new GatewayError('GW_ERR_MFA_UNAVAILABLE', 503, 'Two-step verification is unavailable; try again shortly.', { cause });

export async function webauthnRoutes(app: FastifyInstance, deps: GatewayDeps, mfa: MfaDeps, kit: SecondStepKit): Promise<void> {
  const { config, metrics } = deps;
  const { prefix, loginPath, subjectOf, returnTo, admit, complete } = kit;
  const verifyPath = secondStepPath(prefix, 'verify');
  const setupPath = secondStepPath(prefix, 'setup');
  const { webauthn } = mfa;
  const routeOptions = { bodyLimit: BODY_LIMIT_BYTES };
  const base = '/mfa/webauthn';

  const relyingParty = (request: FastifyRequest): RelyingParty => {
    const origin = publicOrigin(request, config);
    return { id: new URL(origin).hostname, origin };
  };

  /** JSON, same origin, an object body, someone signed in (or half): else a 4xx, thrown or sent. */
  async function readCeremony(request: FastifyRequest, reply: FastifyReply): Promise<{ subject: Subject; body: Record<string, unknown> } | null> {
    if (!wantsJson(request)) throw new GatewayError('GW_ERR_JSON_REQUIRED', 415, 'Send this request as JSON (Content-Type: application/json).');
    kit.sameOriginOnly(request);
    const body = request.body ?? {};
    if (typeof body !== 'object' || Array.isArray(body)) throw new GatewayError('GW_ERR_BAD_BODY', 400, 'The body must be a JSON object.');
    const subject = await subjectOf(request);
    if (!subject) {
      reply.code(401).send({ error: 'sign in first', login: loginPath });
      return null;
    }
    return { subject, body: body as Record<string, unknown> };
  }

  /** Registration: for a user without a factor, or from a session that passed one (kit.mayEnrol). */
  async function mayRegister(subject: Subject, reply: FastifyReply): Promise<boolean> {
    if (subject.kind === 'pending' && subject.pending.step === 'verify') {
      reply.code(409).send({ error: 'complete the second step first', next: verifyPath });
      return false;
    }
    if (!kit.mayEnrol(subject, await kit.factors(subject.user))) {
      reply.code(409).send({ error: 'a second factor is set up already; complete the second step with it first', next: verifyPath });
      return false;
    }
    return true;
  }

  const passkeyName = (request: FastifyRequest, given: unknown): string => {
    const name = typeof given === 'string' ? given.trim() : '';
    // eslint-disable-next-line no-control-regex
    return name !== '' && name.length <= MAX_NAME_LENGTH && !/[\u0000-\u001f\u007f]/.test(name) ? name : describeClient(request.headers['user-agent']);
  };

  app.post(`${base}/register/options`, routeOptions, async (request, reply) => {
    const ceremony = await readCeremony(request, reply);
    if (!ceremony) return reply;
    const { subject } = ceremony;
    if (!(await mayRegister(subject, reply))) return reply;
    return webauthn.registrationOptions(subject.user, kit.holderOf(subject), relyingParty(request)).catch((err: unknown) => {
      throw unavailable(err);
    });
  });

  app.post(`${base}/register`, routeOptions, async (request, reply) => {
    const ceremony = await readCeremony(request, reply);
    if (!ceremony) return reply;
    const { subject, body } = ceremony;
    if (!(await mayRegister(subject, reply))) return reply;
    const rd = returnTo(subject, body.rd);
    if (!(await admit(request, reply, subject, 'webauthn', true, () => undefined))) return reply;
    const result = await webauthn.register(subject.user, kit.holderOf(subject), relyingParty(request), body.credential, passkeyName(request, body.name)).catch((err: unknown) => {
      metrics.mfaVerifications.inc({ method: 'webauthn', outcome: 'error' });
      throw unavailable(err);
    });
    if (!result.ok) {
      metrics.mfaVerifications.inc({ method: 'webauthn', outcome: result.reason === 'no_challenge' ? 'replayed' : 'failure' });
      request.log.warn({ audit: 'mfa_enrolment', user: subject.user, ip: request.ip, outcome: 'failure', method: 'webauthn', reason: result.reason }, 'passkey registration refused');
      if (result.reason === 'exists') return reply.code(409).send({ error: 'This passkey is registered already.' });
      return reply.code(401).send({ error: 'The passkey could not be registered. Try again.' });
    }
    await mfa.throttle.succeeded(subject.user, request.ip).catch(() => undefined);
    request.log.info({ audit: 'mfa_enrolment', user: subject.user, ip: request.ip, outcome: 'success', method: 'webauthn', passkey: result.passkey.name }, 'passkey registered');
    // From now on the password alone opens nothing: a Basic credential cached before is forgotten.
    await forgetUserCredentials(deps.tokens, subject.user, request.log);
    // The first factor brings the ten recovery codes, shown once (as TOTP enrolment does).
    const recoveryCodes = await mfa.service.recoveryCodesForPasskey(subject.user).catch((err: unknown) => {
      throw unavailable(err);
    });
    const signedIn = await complete(request, reply, subject, 'passkey_enrolment', 'hwk');
    metrics.mfaVerifications.inc({ method: 'webauthn', outcome: 'success' });
    // Registered either way; a pending sign-in that raced another tab signs in again.
    const next = signedIn ? rd : `${loginPath}?rd=${encodeURIComponent(rd)}`;
    return reply.send({ passkey: { name: result.passkey.name }, ...(recoveryCodes ? { recoveryCodes } : {}), next, ...(signedIn ?? {}) });
  });

  app.post(`${base}/options`, routeOptions, async (request, reply) => {
    const ceremony = await readCeremony(request, reply);
    if (!ceremony) return reply;
    const { subject } = ceremony;
    if (subject.kind === 'pending' && subject.pending.step === 'setup') return reply.code(409).send({ error: 'set up a second factor first', next: setupPath });
    const options = await webauthn.assertionOptions(subject.user, kit.holderOf(subject), relyingParty(request)).catch((err: unknown) => {
      throw unavailable(err);
    });
    if (options === null) return reply.code(409).send({ error: 'no passkey is registered for this account', next: verifyPath });
    return options;
  });

  app.post(base, routeOptions, async (request, reply) => {
    const ceremony = await readCeremony(request, reply);
    if (!ceremony) return reply;
    const { subject, body } = ceremony;
    if (subject.kind === 'pending' && subject.pending.step === 'setup') return reply.code(409).send({ error: 'set up a second factor first', next: setupPath });
    const rd = returnTo(subject, body.rd);
    if (!(await admit(request, reply, subject, 'webauthn', true, () => undefined))) return reply;
    const result = await webauthn.assert(subject.user, kit.holderOf(subject), relyingParty(request), body.credential).catch((err: unknown) => {
      metrics.mfaVerifications.inc({ method: 'webauthn', outcome: 'error' });
      throw unavailable(err);
    });
    if (!result.ok) {
      const replayed = result.reason === 'no_challenge' || result.reason === 'counter';
      metrics.mfaVerifications.inc({ method: 'webauthn', outcome: replayed ? 'replayed' : 'failure' });
      request.log.warn({ audit: 'mfa', user: subject.user, ip: request.ip, outcome: 'failure', method: 'webauthn', reason: result.reason }, 'second step failed');
      return reply.code(401).send({ error: PASSKEY_FAILED });
    }
    await mfa.throttle.succeeded(subject.user, request.ip).catch(() => undefined);
    const signedIn = await complete(request, reply, subject, 'webauthn', 'hwk');
    if (!signedIn) return reply.code(401).send({ error: 'This sign-in has already been completed or has expired.' });
    metrics.mfaVerifications.inc({ method: 'webauthn', outcome: 'success' });
    return reply.send({ ...signedIn, next: rd });
  });
}
