// The Traefik forward-auth examples, checked without Traefik (not packaged in Debian): both files
// parse, point the middleware at /_auth/verify, keep trustForwardHeader off, route the gateway's
// own pages past the middleware, and copy exactly the identity headers (any case, `_` spelling)
// so every client-sent copy is dropped. The labels demo's gateway settings pass loadConfig, and
// its app listens where Traefik can reach it.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config.js';

const dir = new URL('../../deploy/examples/forward-auth/', import.meta.url);
const dynamic = parse(readFileSync(new URL('traefik-dynamic.yml', dir), 'utf8')) as {
  http: {
    routers: Record<string, { rule: string; service: string; middlewares?: string[] }>;
    middlewares: Record<string, { forwardAuth: { address: string; trustForwardHeader: boolean; authResponseHeadersRegex: string } }>;
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

const MUST_COPY = ['X-Forwarded-User', 'x-forwarded-email', 'X-FORWARDED-GROUPS', 'X-Gateway-Identity', 'X_Forwarded_User', 'x_gateway_identity'];
const MUST_NOT_COPY = ['X-Forwarded-For', 'X-Forwarded-Host', 'X-Forwarded-Proto', 'Location', 'Set-Cookie', 'X-Forwarded-Users'];

function checkRegex(t: Pick<typeof import("tap").default, "match" | "notMatch">, source: string, where: string): void {
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

  t.same(routers.app?.middlewares, ['session-gateway'], 'the app is behind the middleware');
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

  const env = Object.fromEntries(Object.entries(demo.services['session-gateway']?.environment ?? {}).map(([k, v]) => [k, String(v).replaceAll('$$', '$')]));
  const config = loadConfig(env);
  t.equal(config.trustedProxyCidrs.join(), '172.30.0.2', "Traefik's fixed address is the trusted proxy");
  t.match(config.userQuery, /\$1/);
  t.equal(demo.services.app?.environment?.HOST, '0.0.0.0', 'the app listens beyond loopback, where Traefik reaches it');
});
