// Shared setup for the one-file-per-attack regression tests: real Redis and PostgreSQL, seeded
// users, an echo app standing in for the legacy upstream, and the few request shapes an attacker
// or a browser produces (raw request-targets, the login form with its CSRF pair, JSON logins).
import { rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import type { Test } from 'tap';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession, type TestGateway } from '../helpers/gateway.js';
import { cookieHeader, send, type Response } from '../helpers/http.js';
import { services, type PostgresService, type RedisService } from '../helpers/services.js';
import { startEchoUpstream, type Echo, type EchoUpstream, type UpstreamHandler } from '../helpers/upstream.js';

export interface SeedUser {
  username: string;
  password: string;
  email?: string;
  groups?: string[];
  disabled?: boolean;
}

export interface Bed {
  redis: RedisService;
  pg: PostgresService;
  pool: pg.Pool;
  upstream: EchoUpstream;
  /** The Redis key prefix every gateway of this bed shares (replicas of one deployment). */
  prefix: string;
  /** Starts a gateway replica on this bed's Redis, PostgreSQL, upstream and prefix. */
  gateway(env?: Record<string, string>): Promise<TestGateway>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

export async function testBed(t: Teardown, users: SeedUser[], handler?: UpstreamHandler): Promise<Bed> {
  const { redis, pg: db } = await services(t);
  const pool = await seedUsers(t, db.url, users);
  for (const u of users) if (u.disabled) await pool.query('UPDATE gateway_users SET disabled = true WHERE username = $1', [u.username]);
  const upstream = await startEchoUpstream(handler);
  t.teardown(() => upstream.close());
  const prefix = uniquePrefix();
  const base = { REDIS_URL: redis.url, DATABASE_URL: db.url, GATEWAY_UPSTREAM: upstream.url, GATEWAY_REDIS_PREFIX: prefix };
  return { redis, pg: db, pool, upstream, prefix, gateway: (env = {}) => startTestGateway(t, { ...base, ...env }) };
}

/** The users of `readingsBed`: carol (staff) and alice (admins), both with this password. */
export const READINGS_PASSWORD = 'readings-Pw-0014';

/**
 * For the tests of one more reading of a path (a real app that routes `/x.php/admin` or
 * `/admin.json` as `/admin`): a gateway in front of `upstream` with `/admin` kept to `admins` and
 * `/internal` denied, `/logout` as a logout path, 127.0.0.1 trusted (forward-auth calls), and
 * carol and alice signed in.
 */
export async function readingsBed(t: Teardown, upstream: string, publicPath: string): Promise<{ gw: TestGateway; carol: string; alice: string }> {
  const bed = await testBed(t, [
    { username: 'carol', password: READINGS_PASSWORD, groups: ['staff'] },
    { username: 'alice', password: READINGS_PASSWORD, groups: ['admins'] },
  ]);
  const rulesFile = join(tmpdir(), `sgw-readings-rules-${process.pid}-${bed.prefix.replace(/\W/g, '')}.yaml`);
  writeFileSync(rulesFile, 'rules:\n  - { path: /admin, policy: { groups: [admins] } }\n  - { path: /internal, policy: deny }\n');
  t.teardown(() => rmSync(rulesFile, { force: true }));
  const gw = await bed.gateway({ GATEWAY_UPSTREAM: upstream, GATEWAY_ACCESS_RULES: rulesFile, GATEWAY_PUBLIC_PATHS: publicPath, GATEWAY_LOGOUT_PATHS: '/logout', GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32' });
  return { gw, carol: await login(gw, 'carol', READINGS_PASSWORD), alice: await login(gw, 'alice', READINGS_PASSWORD) };
}

/**
 * readingsBed's refusals through the proxy: carol gets 403 for each target, a request without a
 * session 401 (403 into the `deny`), and the app, whose answers name a "route", never answers.
 */
export async function checkRefusedThroughProxy(t: Pick<Test, 'equal' | 'notMatch'>, gw: TestGateway, carol: string, intoAdmin: readonly string[], intoInternal: readonly string[]): Promise<void> {
  const json = { accept: 'application/json' };
  for (const target of [...intoAdmin, ...intoInternal]) {
    const res = await rawRequest(gw, target, { headers: withSession(gw, carol, json) });
    t.equal(res.status, 403, `${target}: 403`);
    t.notMatch(res.body, /"route"/, `${target}: the app did not answer`);
    const anonymous = await rawRequest(gw, target, { headers: json });
    t.equal(anonymous.status, intoAdmin.includes(target) ? 401 : 403, `${target} without a session`);
    t.notMatch(anonymous.body, /"route"/);
  }
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * Sends `target` exactly as written on the request line. `send` goes through `new URL`, which
 * resolves `..` and `%2e%2e` itself and would hide every path-confusion case.
 */
export function rawRequest(gateway: TestGateway, target: string, options: { method?: string; headers?: OutgoingHttpHeaders | Array<[string, string]> } = {}): Promise<RawResponse> {
  const { hostname, port } = new URL(gateway.url);
  const headers = Array.isArray(options.headers) ? options.headers.flat() : options.headers;
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, path: target, method: options.method ?? 'GET', headers: headers as OutgoingHttpHeaders, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export function jsonLogin(gateway: TestGateway, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return send(`${gateway.url}/_auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

export interface LoginForm {
  /** The hidden `csrf` field. */
  token: string;
  /** The `sgw_csrf` pre-login cookie the token is bound to. */
  csrfCookie: string;
  /** The hidden `rd` field, HTML-unescaped. */
  rd: string;
}

const unescapeHtml = (s: string) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

export function hiddenField(html: string, name: string): string | undefined {
  const m = new RegExp(`<input[^>]*name="${name}"[^>]*value="([^"]*)"`).exec(html);
  return m?.[1] === undefined ? undefined : unescapeHtml(m[1]);
}

/** GETs the login page as a browser does and returns its CSRF pair. */
export async function loginForm(gateway: TestGateway, query = ''): Promise<LoginForm> {
  const res = await send(`${gateway.url}/_auth/login${query}`, { headers: { accept: 'text/html' } });
  const token = hiddenField(res.body, 'csrf');
  const csrfCookie = res.cookies.sgw_csrf;
  if (res.status !== 200 || !token || !csrfCookie) throw new Error(`login page broken: ${res.status} ${res.body.slice(0, 200)}`);
  return { token, csrfCookie, rd: hiddenField(res.body, 'rd') ?? '' };
}

/** POSTs the login form as a browser does: form-encoded, with whatever cookies and headers are given. */
export function postForm(gateway: TestGateway, fields: Record<string, string>, cookies: Record<string, string> = {}, headers: Record<string, string> = {}): Promise<Response> {
  return send(`${gateway.url}/_auth/login`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'text/html',
      ...(Object.keys(cookies).length > 0 ? { cookie: cookieHeader(cookies) } : {}),
      ...headers,
    },
    body: new URLSearchParams(fields).toString(),
  });
}

/** The whole browser sign-in: fetch the page, post the form with its own token and cookie. */
export async function browserLogin(
  gateway: TestGateway,
  fields: Record<string, string>,
  options: { cookies?: Record<string, string>; headers?: Record<string, string> } = {},
): Promise<Response> {
  const form = await loginForm(gateway);
  return postForm(gateway, { csrf: form.token, ...fields }, { ...options.cookies, sgw_csrf: form.csrfCookie }, options.headers);
}

/** A non-browser request to a protected app path: 200 from the echo app, or 401 without a session. */
export function apiGet(gateway: TestGateway, path: string, cookie?: string): Promise<Response> {
  const accept = { accept: 'application/json' };
  return send(`${gateway.url}${path}`, { headers: cookie === undefined ? accept : withSession(gateway, cookie, accept) });
}

/** The upstream's received headers as [name, value] pairs, exactly as they arrived on the wire. */
export function rawPairs(echo: Echo): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i < echo.rawHeaders.length; i += 2) pairs.push([echo.rawHeaders[i] ?? '', echo.rawHeaders[i + 1] ?? '']);
  return pairs;
}

/** Header names compared the way CGI/PHP/WSGI apps see them: case and `_`/`-` ignored. */
export const cgiName = (name: string) => name.toLowerCase().replaceAll('_', '-');

/**
 * Exact header spellings for `send` (an array of pairs). Node adds no Host header to an array, and
 * an HTTP/1.1 request without one is refused, so it is put first here.
 */
export function exactHeaders(gateway: TestGateway, pairs: Array<[string, string]>): Array<[string, string]> {
  return [['Host', new URL(gateway.url).host], ...pairs];
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
