// Attack: the access rules deny `DELETE /orders` and everything under `/admin`, but many app
// frameworks honour override headers: Rails/Express/Spring/Laravel take the method from
// `X-HTTP-Method-Override` (or `X-HTTP-Method`, `X-Method-Override`), IIS and Symfony route by
// `X-Original-URL`/`X-Rewrite-URL`. A client sends an allowed `POST /orders` with
// `X-HTTP-Method-Override: DELETE`, or a public `GET /public/x` with `X-Original-URL: /admin`, and
// the app performs what the gateway refused.
// Defence: src/identity/headers.ts (createRequestHeaderRewriter) removes every re-routing
// and re-addressing header (SPEC section 4's list), in any case and underscore spelling, from
// anyone but a GATEWAY_TRUSTED_PROXIES peer, on every request. From a trusted peer (a load
// balancer passes its client's copies on) they reach the app, so the URL they name
// (src/access/rewritten-url.ts) and the method they name (src/access/method-override.ts) are
// judged by the rules too.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { login, withSession } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import type { Echo } from '../helpers/upstream.js';
import { exactHeaders, testBed } from './setup.js';

const dir = mkdtempSync(join(tmpdir(), 'sgw-override-'));
const rulesFile = join(dir, 'rules.yaml');
writeFileSync(rulesFile, 'rules:\n  - path: /orders\n    methods: [DELETE]\n    policy: deny\n  - path: /admin\n    policy: deny\n');

/** Does what a framework with method-override and IIS-style rewrite support would do. */
const effective = (echo: Echo) => {
  const header = (name: string) => {
    const found = Object.entries(echo.headers).find(([k]) => k.toLowerCase().replaceAll('_', '-') === name);
    return found ? String(found[1]) : undefined;
  };
  const method = header('x-http-method-override') ?? header('x-http-method') ?? header('x-method-override') ?? echo.method;
  const url = header('x-original-url') ?? header('x-rewrite-url') ?? echo.url;
  return { method: method.toUpperCase(), url };
};

const actions: Array<{ method: string; url: string }> = [];
const bed = await testBed(t, [{ username: 'bob', password: 'bob-Pw-0019', groups: ['staff'] }], (echo, res) => {
  const action = effective(echo);
  actions.push(action);
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ ...echo, action }));
  return true;
});
const env = { GATEWAY_ACCESS_RULES: rulesFile, GATEWAY_PUBLIC_PATHS: '/public' };
const gw = await bed.gateway(env);
const bob = await login(gw, 'bob', 'bob-Pw-0019');

t.test('control: DELETE /orders is denied by the rule', async (t) => {
  const res = await send(`${gw.url}/orders/42`, { method: 'DELETE', headers: withSession(gw, bob, { accept: 'application/json' }) });
  t.equal(res.status, 403);
});

t.test('a POST with a method-override header reaches the app as a POST', async (t) => {
  const spellings = ['X-HTTP-Method-Override', 'x-http-method', 'X-Method-Override', 'X_HTTP_Method_Override', 'x_http_method'];
  for (const name of spellings) {
    actions.length = 0;
    const res = await send(`${gw.url}/orders/42`, {
      method: 'POST',
      headers: exactHeaders(gw, [['Cookie', withSession(gw, bob).cookie as string], ['Accept', 'application/json'], ['Content-Type', 'text/plain'], [name, 'DELETE']]),
      body: 'x',
    });
    t.equal(res.status, 200, `${name}: the POST itself is allowed`);
    t.same(actions, [{ method: 'POST', url: '/orders/42' }], `${name}: the app performed a POST, not the DELETE the rules deny`);
  }
});

t.test('a public path cannot be re-routed onto a denied one', async (t) => {
  for (const name of ['X-Original-URL', 'X-Rewrite-URL', 'x_original_url']) {
    actions.length = 0;
    const res = await send(`${gw.url}/public/x`, { headers: exactHeaders(gw, [['Accept', 'application/json'], [name, '/admin/users']]) });
    t.equal(res.status, 200, `${name}: the public path is served`);
    t.same(actions, [{ method: 'GET', url: '/public/x' }], `${name}: the app served /public/x, not /admin`);
  }
});

t.test('address and prefix claims from a client do not reach the app', async (t) => {
  const forged = ['Forwarded', 'X-Real-IP', 'X-Forwarded-Prefix', 'X-Script-Name', 'X-Forwarded-Port', 'X-Forwarded-Server', 'X-Client-IP', 'True-Client-IP', 'CF-Connecting-IP', 'X_Forwarded_For'];
  const res = await send(`${gw.url}/public/x`, { headers: exactHeaders(gw, [['Accept', 'application/json'], ...forged.map((name): [string, string] => [name, '6.6.6.6'])]) });
  const echo = res.json<Echo>();
  t.same(Object.entries(echo.headers).filter(([, v]) => String(v).includes('6.6.6.6')), [], 'none of them arrives');
  t.equal(echo.headers['x-forwarded-for'], '127.0.0.1', 'the gateway says who the client is');
});

t.test('behind a trusted proxy, which passes its client\'s copies on, a rewritten URL or method is judged too', async (t) => {
  const trusted = await bed.gateway({ ...env, GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32' });
  const bobThere = await login(trusted, 'bob', 'bob-Pw-0019');
  for (const name of ['X-Original-URL', 'X-Rewrite-URL', 'x_original_url']) {
    actions.length = 0;
    const anonymous = await send(`${trusted.url}/public/x`, { headers: exactHeaders(trusted, [['Accept', 'application/json'], [name, '/admin/users']]) });
    t.equal(anonymous.status, 403, `${name}: the rule of the path the app would serve decides (deny)`);
    const reports = await send(`${trusted.url}/public/x`, { headers: exactHeaders(trusted, [['Accept', 'application/json'], [name, '/reports']]) });
    t.equal(reports.status, 401, `${name}: a public path rewritten onto a private one needs a session`);
    t.same(actions, [], `${name}: the app never served them`);
  }
  const bad = await send(`${trusted.url}/public/x`, { headers: exactHeaders(trusted, [['Accept', 'application/json'], ['X-Original-URL', '/a/%2f/admin']]) });
  t.equal(bad.status, 400, 'one that cannot be normalised: 400');
  const override = await send(`${trusted.url}/orders/42`, { method: 'POST', headers: exactHeaders(trusted, [['Cookie', withSession(trusted, bobThere).cookie as string], ['Accept', 'application/json'], ['Content-Type', 'text/plain'], ['X-HTTP-Method-Override', 'DELETE']]), body: 'x' });
  t.equal(override.status, 403, 'a POST with X-HTTP-Method-Override: DELETE needs what DELETE needs');
  const plain = await send(`${trusted.url}/public/x`, { headers: exactHeaders(trusted, [['Accept', 'application/json'], ['X-Original-URL', '/public/y']]) });
  t.equal(plain.status, 200, 'control: a rewritten URL the rules allow passes, header and all');
  t.equal(plain.json<Echo>().headers['x-original-url'], '/public/y');
});

t.test('behind a trusted proxy they pass: the proxy in front owns them', async (t) => {
  const trusted = await bed.gateway({ ...env, GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32' });
  const res = await send(`${trusted.url}/public/x`, { headers: exactHeaders(trusted, [['Accept', 'application/json'], ['X-Forwarded-Prefix', '/app'], ['X-Real-IP', '203.0.113.9']]) });
  const echo = res.json<Echo>();
  t.equal(echo.headers['x-forwarded-prefix'], '/app');
  t.equal(echo.headers['x-real-ip'], '203.0.113.9');
});
