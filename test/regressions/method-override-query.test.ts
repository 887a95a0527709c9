// Attack: a rule keeps DELETE of `/orders` to admins and PUT away from everyone, but the app
// (here a real PHP front controller, acting on the method as Symfony's Request::getMethod() does
// with Laravel's method override on) takes a POST for whatever `_method` says. A staff user sends
// an allowed `POST /orders/1?_method=DELETE` and the app deletes. PHP reads `?.method=` and
// `?+_method=` as `_method` too. Behind a trusted load balancer, which passes the client's headers
// on, `X-HTTP-Method-Override: DELETE` reaches the app the same way.
// Defence (SPEC 4, rules.ts): src/access/method-override.ts reads every method a POST names (its
// query; the override headers when they reach the app) and the rules for each must allow the
// request, through the proxy and /_auth/verify alike; the app still receives the request as sent.
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { callVerify } from '../helpers/forward-auth.js';
import { login, withSession } from '../helpers/gateway.js';
import { startPhpApp, type PhpEcho } from '../helpers/php-app.js';
import { rawRequest, testBed } from './setup.js';

const php = await startPhpApp(t);
const bed = await testBed(t, [
  { username: 'carol', password: 'carol-Pw-0012', groups: ['staff'] },
  { username: 'alice', password: 'alice-Pw-0012', groups: ['admins'] },
]);
const rulesFile = join(tmpdir(), `sgw-override-query-rules-${process.pid}.yaml`);
writeFileSync(rulesFile, 'rules:\n  - { path: /orders, methods: [DELETE], policy: { groups: [admins] } }\n  - { path: /orders, methods: [PUT, PATCH], policy: deny }\n');
t.teardown(() => rmSync(rulesFile, { force: true }));
const env = { GATEWAY_UPSTREAM: php.url, GATEWAY_ACCESS_RULES: rulesFile };
// The test client connects from 127.0.0.1: to `behindBalancer` it is the trusted load balancer.
const gw = await bed.gateway(env);
const behindBalancer = await bed.gateway({ ...env, GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32' });
const json = { accept: 'application/json' };
const carol = await login(gw, 'carol', 'carol-Pw-0012');
const alice = await login(gw, 'alice', 'alice-Pw-0012');
const carolBehind = await login(behindBalancer, 'carol', 'carol-Pw-0012');

const INTO_DELETE = ['/orders/1?_method=DELETE', '/orders/1?_m%65thod=DELETE', '/orders/1?_method=delete', '/orders/1?x=1&_method=DELETE', '/orders/1?.method=DELETE', '/orders/1?+_method=DELETE', '/orders/1?%5Fmethod=DELETE', '/orders?_method=DELETE'];
const INTO_PUT = ['/orders/1?_method=PUT', '/orders/1?_method=patch', '/orders/1?.method=PATCH'];

const post = (gateway: typeof gw, target: string, headers: Record<string, string>) => rawRequest(gateway, target, { method: 'POST', headers: { ...headers, 'content-length': '0' } });

t.test('the app itself takes each of these POSTs for the method it names (what makes a method rule unsafe)', async (t) => {
  for (const target of INTO_DELETE) {
    const res = await fetch(`${php.url}${target}`, { method: 'POST' });
    t.equal(((await res.json()) as PhpEcho).method, 'DELETE', target);
  }
  const res = await fetch(`${php.url}/orders/1`, { method: 'POST', headers: { 'x-http-method-override': 'delete' } });
  t.equal(((await res.json()) as PhpEcho).method, 'DELETE', 'X-HTTP-Method-Override');
});

t.test('through the proxy: a POST naming DELETE needs what DELETE needs, PUT and PATCH stay denied', async (t) => {
  for (const target of INTO_DELETE) {
    const res = await post(gw, target, withSession(gw, carol, json));
    t.equal(res.status, 403, `${target}: 403`);
    t.notMatch(res.body, /"route"/, `${target}: the app did not answer`);
    const admin = await post(gw, target, withSession(gw, alice, json));
    t.equal(admin.status, 200, `${target}: an admin may`);
    t.equal((JSON.parse(admin.body) as PhpEcho).method, 'DELETE', `${target}: and the app deletes`);
  }
  for (const target of INTO_PUT) {
    t.equal((await post(gw, target, withSession(gw, alice, json))).status, 403, `${target}: deny is deny`);
  }
});

t.test('control: a POST that names no other method is a POST', async (t) => {
  for (const target of ['/orders/1', '/orders/1?payment_method=DELETE', '/orders/1?method=DELETE', '/orders/1?_method=POST', '/reports?_method=DELETE']) {
    const res = await post(gw, target, withSession(gw, carol, json));
    t.equal(res.status, 200, target);
    t.equal((JSON.parse(res.body) as PhpEcho).method, target.startsWith('/reports') ? 'DELETE' : 'POST', `${target}: what the app did`);
  }
  const get = await rawRequest(gw, '/orders/1?_method=DELETE', { headers: withSession(gw, carol, json) });
  t.equal(get.status, 200, 'a GET is never overridden');
  t.equal((JSON.parse(get.body) as PhpEcho).method, 'GET');
});

t.test('an override header: removed from an untrusted peer, judged when a trusted one passes it on', async (t) => {
  const direct = await post(gw, '/orders/1', withSession(gw, carol, { ...json, 'x-http-method-override': 'DELETE' }));
  t.equal(direct.status, 200, 'untrusted peer: the header is removed, so the POST is a POST');
  t.equal((JSON.parse(direct.body) as PhpEcho).method, 'POST');
  for (const name of ['X-HTTP-Method-Override', 'x-http-method-override']) {
    const res = await post(behindBalancer, '/orders/1', withSession(behindBalancer, carolBehind, { ...json, [name]: 'DELETE' }));
    t.equal(res.status, 403, `${name} from a trusted peer: 403`);
    t.notMatch(res.body, /"route"/);
  }
  const control = await post(behindBalancer, '/orders/1', withSession(behindBalancer, carolBehind, json));
  t.equal(control.status, 200, 'control: the plain POST from a trusted peer');
});

t.test('through /_auth/verify: the original URI\'s _method counts for a POST', async (t) => {
  for (const uri of INTO_DELETE) {
    t.equal((await callVerify(behindBalancer, { 'x-forwarded-uri': uri, 'x-forwarded-method': 'POST', cookie: withSession(behindBalancer, carolBehind).cookie })).status, 403, `X-Forwarded-Uri: ${uri}`);
    t.equal((await callVerify(behindBalancer, { 'x-original-uri': uri, 'x-original-method': 'POST', cookie: withSession(behindBalancer, carolBehind).cookie })).status, 403, `X-Original-URI: ${uri}`);
  }
  t.equal((await callVerify(behindBalancer, { 'x-forwarded-uri': '/orders/1', 'x-forwarded-method': 'POST', cookie: withSession(behindBalancer, carolBehind).cookie })).status, 204, 'control: the plain POST');
});
