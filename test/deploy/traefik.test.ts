// The Traefik forward-auth examples, checked without Traefik (not packaged in Debian): both files
// parse, point the middleware at /_auth/verify, keep trustForwardHeader off, route the gateway's
// own pages past the middleware, and copy exactly the identity headers (any case, `_` spelling)
// so every client-sent copy is dropped, plus Cookie and Authorization. The labels demo's gateway settings pass
// loadConfig, and its app listens where Traefik can reach it. Traefik's forwardAuth header handling
// (drop request headers matching the regex, then copy the verify answer's matching ones, as its
// source does) is replayed against a real gateway's answers: the app's cookies pass, the gateway's
// never do.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/config.js';
import { startTestGateway } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';

const dir = new URL('../../deploy/examples/forward-auth/', import.meta.url);
const dynamic = parse(readFileSync(new URL('traefik-dynamic.yml', dir), 'utf8')) as {
  http: {
    routers: Record<string, { rule: string; service: string; middlewares?: string[] }>;
    middlewares: Record<string, { forwardAuth: { address: string; trustForwardHeader: boolean; authResponseHeadersRegex: string }; headers?: { customRequestHeaders: Record<string, string> } }>;
    services: Record<string, { loadBalancer: { servers: Array<{ url: string }> } }>;
  };
};
const demo = parse(readFileSync(new URL('docker-compose.traefik.yml', dir), 'utf8')) as {
  services: Record<string, { environment?: Record<string, string>; labels?: string[] }>;
};

/** Traefik's regexes are Go's: `(?i)` in front means case-insensitive. */
function goRegex(source: string): RegExp {
  return source.startsWith('(?i)') ? new RegExp(source.slice(4), 'i') : new RegExp(source);
}

const MUST_COPY = ['X-Forwarded-User', 'x-forwarded-email', 'X-FORWARDED-GROUPS', 'X-Gateway-Identity', 'X_Forwarded_User', 'x_gateway_identity', 'X-Forwarded_Groups', 'X_Forwarded-User', 'X-Gateway_Identity', 'X-Forwarded.User', 'x.forwarded.groups', 'X-Gateway.Identity', 'Cookie', 'Authorization', 'authorization'];
const MUST_NOT_COPY = ['X-Forwarded-For', 'X-Forwarded-Host', 'X-Forwarded-Proto', 'Location', 'Set-Cookie', 'X-Forwarded-Users', 'Cookie2', 'X-Cookie', 'Proxy-Authorization', 'X-Authorization'];

/** SPEC 4: headers that make apps re-route or re-address a request; the proxy in front removes them. */
const REROUTING = ['Forwarded', 'X-Real-IP', 'X-Original-URL', 'X-Rewrite-URL', 'X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override', 'X-Forwarded-Prefix', 'X-Forwarded-Port', 'X-Forwarded-Server', 'X-Client-IP', 'True-Client-IP', 'CF-Connecting-IP'];

function checkRegex(t: Pick<typeof import('tap').default, 'match' | 'notMatch'>, source: string, where: string): void {
  const regex = goRegex(source);
  for (const name of MUST_COPY) t.match(name, regex, `${where}: ${name} is replaced by the gateway's answer`);
  for (const name of MUST_NOT_COPY) t.notMatch(name, regex, `${where}: ${name} is not taken from the verify answer`);
}

t.test('file provider: middleware, routers and the copied identity headers', async (t) => {
  const { routers, middlewares, services } = dynamic.http;
  const auth = middlewares['session-gateway']?.forwardAuth;
  t.ok(auth, 'a forwardAuth middleware named session-gateway');
  t.match(auth?.address, /^http:\/\/127\.0\.0\.1:8000\/_auth\/verify$/);
  t.equal(auth?.trustForwardHeader, false, 'Traefik names the request itself; client X-Forwarded-* are not passed on as the original');
  checkRegex(t, auth?.authResponseHeadersRegex ?? '', 'traefik-dynamic.yml');

  t.same(routers.app?.middlewares, ['strip-rerouting', 'session-gateway'], 'the app is behind the middleware, re-routing headers removed first');
  const removed = middlewares['strip-rerouting']?.headers?.customRequestHeaders ?? {};
  for (const name of REROUTING) t.equal(removed[name], '', `traefik-dynamic.yml: ${name} is removed (an empty value)`);
  t.match(routers['app-auth']?.rule, /PathPrefix\(`\/_auth\/`\)/, 'the gateway pages have their own router');
  t.notOk(routers['app-auth']?.middlewares, '…without the middleware (the login page must be reachable signed out)');
  t.equal(services[routers['app-auth']?.service ?? '']?.loadBalancer.servers[0]?.url, 'http://127.0.0.1:8000');
});

t.test('labels demo: the same middleware, a gateway configuration the gateway accepts, a reachable app', async (t) => {
  const labels = demo.services['session-gateway']?.labels ?? [];
  const label = (key: string) => labels.find((l) => l.startsWith(`${key}=`))?.slice(key.length + 1);
  t.equal(label('traefik.http.middlewares.session-gateway.forwardauth.address'), 'http://session-gateway:8000/_auth/verify');
  // Compose turns `$$` into `$` before Traefik sees the label.
  checkRegex(t, (label('traefik.http.middlewares.session-gateway.forwardauth.authResponseHeadersRegex') ?? '').replaceAll('$$', '$'), 'docker-compose.traefik.yml');
  t.equal(
    label('traefik.http.middlewares.session-gateway.forwardauth.authResponseHeadersRegex')?.replaceAll('$$', '$'),
    dynamic.http.middlewares['session-gateway']?.forwardAuth.authResponseHeadersRegex,
    'both examples copy the same headers',
  );

  const appLabels = demo.services.app?.labels ?? [];
  t.ok(appLabels.includes('traefik.http.routers.app.middlewares=strip-rerouting@docker,session-gateway@docker'), 'labels demo: re-routing headers removed, then the gateway asked');
  for (const name of REROUTING) t.ok(appLabels.includes(`traefik.http.middlewares.strip-rerouting.headers.customrequestheaders.${name}=`), `labels demo: ${name} is removed`);

  const env = Object.fromEntries(Object.entries(demo.services['session-gateway']?.environment ?? {}).map(([k, v]) => [k, String(v).replaceAll('$$', '$')]));
  const config = loadConfig(env);
  t.equal(config.trustedProxyCidrs.join(), '172.30.0.2', "Traefik's fixed address is the trusted proxy");
  t.match(config.userQuery, /\$1/);
  t.equal(demo.services.app?.environment?.HOST, '0.0.0.0', 'the app listens beyond loopback, where Traefik reaches it');
});

/** Go's http.CanonicalHeaderKey, which Traefik's header maps use. */
const canonical = (name: string) => name.toLowerCase().replace(/(^|-)([a-z])/g, (_m, sep: string, c: string) => sep + c.toUpperCase());

/**
 * Traefik's forwardAuth after a 2xx, as its source does it with authResponseHeadersRegex: every
 * request header matching the regex is deleted, then every matching header of the answer is set.
 */
function traefikForward(regex: RegExp, request: Array<[string, string]>, answer: Record<string, string | string[] | undefined>): Record<string, string> {
  const headers = new Map<string, string>();
  for (const [name, value] of request) {
    const key = canonical(name);
    headers.set(key, headers.has(key) ? `${headers.get(key)}; ${value}` : value);
  }
  for (const key of [...headers.keys()]) if (regex.test(key)) headers.delete(key);
  for (const [name, value] of Object.entries(answer)) if (value !== undefined && regex.test(canonical(name))) headers.set(canonical(name), String(value));
  return Object.fromEntries(headers);
}

t.test("Traefik's forwardAuth with the shipped regex: the app gets its own cookies, never the gateway's", async (t) => {
  const regex = goRegex(dynamic.http.middlewares['session-gateway']?.forwardAuth.authResponseHeadersRegex ?? '');
  // Embedded mode: in-process sessions and the generated user, enough for verify's answers.
  const gw = await startTestGateway(t, { GATEWAY_PUBLIC_PATHS: '/public', GATEWAY_TRUSTED_PROXIES: '127.0.0.1', GATEWAY_BASIC_AUTH: 'true' });
  const password = /password \(shown once\):\s+(\S+)/.exec(gw.announced.join(''))?.[1] ?? '';
  const signIn = await send(`${gw.url}/_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'demo', password }) });
  const session = encodeURIComponent(signIn.cookies.sgw_session ?? '');
  t.ok(session, 'signed in');

  /** What the app receives for a request Traefik forwards to `uri` with these headers. */
  const throughTraefik = async (uri: string, request: Array<[string, string]>) => {
    const answer = await send(`${gw.url}/_auth/verify`, { headers: [['Host', 'app.example.com'], ['X-Forwarded-Uri', uri], ['X-Forwarded-Method', 'GET'], ...request] });
    t.equal(answer.status, 204, `verify allows ${uri}`);
    return traefikForward(regex, [['Host', 'app.example.com'], ...request], answer.headers);
  };
  const spoof: Array<[string, string]> = [['X-Forwarded_User', 'mallory'], ['x_forwarded_groups', 'admins']];
  const signedIn = await throughTraefik('/app', [['Cookie', `a=1; sgw_session=${session}; b=2; sgw_session=y; sgw_csrf=z`], ...spoof]);
  t.equal(signedIn.Cookie, 'a=1; b=2', 'signed in: every occurrence of the gateway cookies removed, the app’s kept');
  t.equal(signedIn['X-Forwarded-User'], 'demo');
  t.notOk(signedIn['X-Forwarded_user'] ?? signedIn['X_forwarded_groups'], 'underscore spellings dropped');
  const anonymous = await throughTraefik('/public/page', [['Cookie', 'a=1; sgw_session=x; b=2; sgw_session=y'], ...spoof]);
  t.equal(anonymous.Cookie, 'a=1; b=2', 'public path, no session: the same');
  t.same(Object.keys(anonymous).filter((k) => /user|groups/i.test(k)), [], 'and no identity at all');
  const onlyOurs = await throughTraefik('/app', [['Cookie', `sgw_session=${session}; sgw_csrf=z`]]);
  t.equal(onlyOurs.Cookie, undefined, 'nothing left: no Cookie header at all');
  const own = 'Bearer the-apps-own.jwt';
  t.equal((await throughTraefik('/app', [['Cookie', `sgw_session=${session}`], ['Authorization', own]])).Authorization, own, "the app's own Authorization passes");
  t.equal((await throughTraefik('/public/page', [['Authorization', own]])).Authorization, own, 'on a public path too');
  const basic = `Basic ${Buffer.from(`demo:${password}`).toString('base64')}`;
  const viaBasic = await throughTraefik('/app', [['Authorization', basic]]);
  t.equal(viaBasic['X-Forwarded-User'], 'demo', 'Basic with the password signs in');
  t.equal(viaBasic.Authorization, undefined, 'and the password never reaches the app');
  t.equal((await throughTraefik('/public/page', [['Authorization', basic]])).Authorization, undefined, 'nor on a public path');
});

t.test("the forward-auth docs show the examples' regex (X-Gateway-Identity and Cookie included)", async (t) => {
  const readme = readFileSync(new URL('../../docs/forward-auth.md', import.meta.url), 'utf8');
  const regex = dynamic.http.middlewares['session-gateway']?.forwardAuth.authResponseHeadersRegex ?? '';
  t.ok(readme.includes(`authResponseHeadersRegex: ${regex}`), `README quotes ${regex}`);
  for (const shown of readme.matchAll(/authResponseHeadersRegex: ([^`\s]+)/g)) checkRegex(t, shown[1] ?? '', 'README');
});
