// Attack: a rule keeps DELETE of `/orders` to admins and PUT away from everyone, but the app (a
// real PHP front controller acting on the method as Laravel's Request::getMethod() does) takes a
// POST for whatever its body's `_method` says: a form (`button_to … method: :delete` in Rails,
// `@method('DELETE')` in Laravel), a multipart form (Laravel's PUT with a file) or a JSON body.
// A staff user sends an allowed POST with `_method=DELETE` in its body and the app deletes.
// Defence (SPEC 4): where a method the rules name would meet another rule, src/proxy/judged-body.ts
// scans such a POST's body as it streams to the app (src/access/body-methods.ts), holding back only
// its last chunk; the rules for every method it names must allow the request too, else the upstream
// request is aborted before the app has the whole body and the client gets the refusal. Bodies are
// never buffered whole, and elsewhere they stream unscanned.
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { login, withSession, type TestGateway } from '../helpers/gateway.js';
import { startPhpApp, type PhpEcho } from '../helpers/php-app.js';
import { startRailsApp, type RailsEcho } from '../helpers/rails-app.js';
import { scrapeMetric } from '../helpers/metrics.js';
import { sleep } from '../helpers/services.js';
import { testBed } from './setup.js';

const php = await startPhpApp(t);
const rails = await startRailsApp(t);
const bed = await testBed(t, [
  { username: 'carol', password: 'carol-Pw-0012', groups: ['staff'] },
  { username: 'alice', password: 'alice-Pw-0012', groups: ['admins'] },
]);
const rulesFile = join(tmpdir(), `sgw-override-body-rules-${process.pid}.yaml`);
writeFileSync(rulesFile, 'rules:\n  - { path: /orders, methods: [DELETE], policy: { groups: [admins] } }\n  - { path: /orders, methods: [PUT, PATCH], policy: deny }\n');
t.teardown(() => rmSync(rulesFile, { force: true }));
const gw = await bed.gateway({ GATEWAY_UPSTREAM: php.url, GATEWAY_ACCESS_RULES: rulesFile });
const carol = await login(gw, 'carol', 'carol-Pw-0012');
const alice = await login(gw, 'alice', 'alice-Pw-0012');
const railsGw = await bed.gateway({ GATEWAY_UPSTREAM: rails.url, GATEWAY_ACCESS_RULES: rulesFile });
const carolRails = await login(railsGw, 'carol', 'carol-Pw-0012');
const aliceRails = await login(railsGw, 'alice', 'alice-Pw-0012');

type Body = { type: string; body: string | FormData };
const form = (fields: Array<[string, string]>): Body => ({ type: 'application/x-www-form-urlencoded', body: new URLSearchParams(fields).toString() });
const multipart = (fields: Array<[string, string]>): Body => {
  const data = new FormData();
  for (const [name, value] of fields) data.append(name, value);
  return { type: '', body: data };
};
const json = (value: unknown, type = 'application/json'): Body => ({ type, body: JSON.stringify(value) });

// Each names DELETE the way PHP reads it (`.method` and an encoded name are `_method` to PHP).
const INTO_DELETE: Array<[string, Body]> = [
  ['form', form([['note', 'n1'], ['_method', 'DELETE']])],
  ['form, lower case', form([['_method', 'delete'], ['note', 'n1']])],
  ['form, PHP spelling .method', form([['.method', 'DELETE'], ['note', 'n1']])],
  ['form, encoded name', { type: 'application/x-www-form-urlencoded', body: 'note=n1&_m%65thod=DELETE' }],
  ['multipart', multipart([['note', 'n1'], ['_method', 'DELETE']])],
  ['multipart, PHP spelling', multipart([['note', 'n1'], [' _method', 'DELETE']])],
  ['multipart, a part charset PHP ignores', { type: 'multipart/form-data; boundary=XyZ', body: '--XyZ\r\nContent-Disposition: form-data; name="note"\r\n\r\nn1\r\n--XyZ\r\nContent-Disposition: form-data; name="_method"\r\nContent-Type: text/plain; charset=utf-16le\r\n\r\nDELETE\r\n--XyZ--\r\n' }],
  ['JSON', json({ note: 'n1', _method: 'DELETE' })],
  ['JSON:API type', json({ note: 'n1', _method: 'DELETE' }, 'application/vnd.api+json')],
];

async function post(gateway: TestGateway, session: string, target: string, { type, body }: Body) {
  const headers = withSession(gateway, session, { accept: 'application/json', ...(type === '' ? {} : { 'content-type': type }) });
  const res = await fetch(`${gateway.url}${target}`, { method: 'POST', headers, body, redirect: 'manual' });
  return { status: res.status, text: await res.text() };
}

t.test('the app itself takes each of these POSTs for DELETE (what makes a method rule unsafe)', async (t) => {
  for (const [name, body] of INTO_DELETE) {
    const res = await fetch(`${php.url}/orders/1`, { method: 'POST', headers: body.type === '' ? {} : { 'content-type': body.type }, body: body.body });
    const echo = (await res.json()) as PhpEcho;
    t.equal(echo.method, 'DELETE', name);
    t.equal(echo.note, 'n1', `${name}: the app read the body`);
  }
});

t.test('through the proxy: a body naming DELETE needs what DELETE needs; the app gets the body as sent', async (t) => {
  for (const [name, body] of INTO_DELETE) {
    const staff = await post(gw, carol, '/orders/1', body);
    t.equal(staff.status, 403, `${name}: 403 for staff`);
    t.notMatch(staff.text, /"route"/, `${name}: the app did not answer`);
    const admin = await post(gw, alice, '/orders/1', body);
    t.equal(admin.status, 200, `${name}: an admin may`);
    const echo = JSON.parse(admin.text) as PhpEcho;
    t.equal(echo.method, 'DELETE', `${name}: the app deletes`);
    t.equal(echo.note, 'n1', `${name}: with the body the client sent`);
  }
  for (const body of [form([['_method', 'PUT']]), multipart([['_method', 'patch']]), json({ _method: 'PUT' })]) {
    t.equal((await post(gw, alice, '/orders/1', body)).status, 403, 'PUT and PATCH stay denied, even for an admin');
  }
});

t.test('control: a body that names no other method is a POST, and reaches the app whole', async (t) => {
  for (const body of [form([['note', 'n1']]), form([['note', 'n1'], ['_method', 'POST']]), form([['note', 'n1'], ['payment_method', 'DELETE']]), multipart([['note', 'n1']]), json({ note: 'n1', nested: { _method: 'DELETE' } }), json(['_method', 'DELETE'])]) {
    const res = await post(gw, carol, '/orders/1', body);
    t.equal(res.status, 200, `${body.type || 'multipart'}: 200`);
    const echo = JSON.parse(res.text) as PhpEcho;
    t.equal(echo.method, 'POST', 'the app took it for a POST');
  }
  const big = form([['note', 'x'.repeat(200_000)]]);
  const res = await post(gw, carol, '/orders/1', big);
  t.equal(res.status, 200, 'a 200 kB form is read and forwarded');
  t.equal((JSON.parse(res.text) as PhpEcho).note?.length, 200_000, 'every byte of it');
});

t.test('a large body streams through the scan: judged at its end, forwarded whole when allowed', async (t) => {
  const huge = form([['note', 'x'.repeat(3_000_000)], ['_method', 'DELETE']]);
  const refused = await post(gw, carol, '/orders/1', huge);
  t.equal(refused.status, 403, 'a 3 MB form naming DELETE at its end: 403 for staff');
  t.notMatch(refused.text, /"route"/, 'the app did not answer');
  const allowed = await post(gw, alice, '/orders/1', huge);
  t.equal(allowed.status, 200, 'an admin may');
  const echo = JSON.parse(allowed.text) as PhpEcho;
  t.equal(echo.method, 'DELETE');
  t.equal(echo.note?.length, 3_000_000, 'every byte reached the app');
  const elsewhere = await post(gw, carol, '/reports/1', huge);
  t.equal(elsewhere.status, 200, 'no rule names a method at /reports: the body is not scanned');
  t.equal((JSON.parse(elsewhere.text) as PhpEcho).method, 'DELETE', 'and the app there does what it says');
});

t.test('a gzip-coded form where it would be judged: 415 before anything is forwarded; elsewhere it passes', async (t) => {
  const body = new TextEncoder().encode('_method=DELETE');
  const headers = withSession(gw, carol, { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' });
  const refused = await fetch(`${gw.url}/orders/1`, { method: 'POST', headers, body });
  t.equal(refused.status, 415);
  t.match(await refused.text(), /cannot read one with Content-Encoding gzip/);
  const elsewhere = await fetch(`${gw.url}/reports/1`, { method: 'POST', headers, body });
  t.equal(elsewhere.status, 200, 'no rule names a method at /reports: not read, so not refused');
});

t.test('a multipart body the gateway cannot read where it would be judged: 400, and the app never gets it whole', async (t) => {
  const headers = withSession(gw, carol, { accept: 'application/json', 'content-type': 'multipart/form-data; boundary=XyZ' });
  const res = await fetch(`${gw.url}/orders/1`, { method: 'POST', headers, body: '--XyZ\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE' });
  t.equal(res.status, 400);
  t.match(await res.text(), /could not read for the method or paths it names/);
});

t.test('a client that leaves half-way through a judged body: no answer owed, nothing counted against the app', async (t) => {
  const { hostname, port } = new URL(gw.url);
  const socket = connect(Number(port), hostname);
  await new Promise((resolve) => socket.once('connect', resolve));
  const cookie = withSession(gw, carol).cookie;
  socket.write(`POST /orders/1 HTTP/1.1\r\nHost: ${hostname}:${port}\r\nCookie: ${cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nnote=${'x'.repeat(20_000)}`);
  await sleep(200);
  socket.destroy();
  await sleep(200);
  const after = await post(gw, carol, '/orders/1', form([['note', 'n1']]));
  t.equal(after.status, 200, 'the gateway goes on');
  t.equal(await scrapeMetric(gw.adminUrl, 'gateway_upstream_request_duration_seconds_count', { status_class: '5xx' }), 0, 'no upstream 5xx counted');
});

t.test('Expect: 100-continue: the body is asked for, read, and judged', async (t) => {
  const send = (session: string) =>
    new Promise<{ status: number; continued: boolean; body: string }>((resolve, reject) => {
      const body = '_method=DELETE&note=n1';
      const { hostname, port } = new URL(gw.url);
      let continued = false;
      const req = httpRequest(
        { host: hostname, port, path: '/orders/1', method: 'POST', agent: false, headers: withSession(gw, session, { accept: 'application/json', expect: '100-continue', 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length) }) },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, continued, body: Buffer.concat(chunks).toString() }));
        },
      );
      req.on('continue', () => {
        continued = true;
        req.end(body);
      });
      req.on('error', reject);
      req.flushHeaders();
    });
  const staff = await send(carol);
  t.ok(staff.continued, 'the gateway asked for the body');
  t.equal(staff.status, 403, 'and refused what it named');
  const admin = await send(alice);
  t.equal(admin.status, 200);
  t.equal((JSON.parse(admin.body) as PhpEcho).method, 'DELETE');
});

// Rails: Rack::MethodOverride in front of the real router. Rack reads a POST without a Content-Type
// as a form.
t.test('a Rails app: the body\'s _method picks the route; the gateway judges it the same way', async (t) => {
  const bodies: Array<[string, Record<string, string>, string]> = [
    ['form', { 'content-type': 'application/x-www-form-urlencoded' }, 'note=n1&_method=delete'],
    ['no Content-Type', {}, '_method=delete'],
    ['multipart', { 'content-type': 'multipart/form-data; boundary=XyZ' }, '--XyZ\r\nContent-Disposition: form-data; name="_method"\r\n\r\ndelete\r\n--XyZ--\r\n'],
  ];
  const send = async (url: string, session: string | null, headers: Record<string, string>, body: string) => {
    const cookie = session === null ? {} : withSession(railsGw, session);
    // Bytes, not a string: fetch would add a text/plain Content-Type to a string.
    const res = await fetch(`${url}/orders/1`, { method: 'POST', headers: { accept: 'application/json', ...cookie, ...headers }, body: new TextEncoder().encode(body), redirect: 'manual' });
    return { status: res.status, text: await res.text() };
  };
  for (const [name, headers, body] of bodies) {
    const direct = await send(rails.url, null, headers, body);
    t.equal((JSON.parse(direct.text) as RailsEcho).route, 'orders#destroy', `${name}: Rails itself routes it to destroy`);
    const staff = await send(railsGw.url, carolRails, headers, body);
    t.equal(staff.status, 403, `${name}: 403 for staff through the gateway`);
    t.notMatch(staff.text, /"route"/, `${name}: Rails did not answer`);
    const admin = await send(railsGw.url, aliceRails, headers, body);
    t.equal((JSON.parse(admin.text) as RailsEcho).route, 'orders#destroy', `${name}: an admin destroys`);
  }
  const plain = await send(railsGw.url, carolRails, { 'content-type': 'application/x-www-form-urlencoded' }, 'note=n1');
  t.equal((JSON.parse(plain.text) as RailsEcho).route, 'orders#create', 'control: a plain form POST creates');
});
