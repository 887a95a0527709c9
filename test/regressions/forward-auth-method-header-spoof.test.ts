// Attack: behind nginx with the widely copied auth_request snippet (only `X-Original-URI` is set, the
// client's other headers pass to the subrequest), a client adds `X-Forwarded-Method: POST` to a
// `GET /export` that a rule (`methods: [GET]`, `deny`) refuses. The gateway used to believe any
// method header, so the verify said 204 and nginx served the export.
// Defence (SPEC 4): src/forward-auth/original-request.ts believes a method header only in the convention of
// the URI header it came with (X-Original-URI + X-Original-Method, X-Forwarded-Uri +
// X-Forwarded-Method); any other method is unknown, and src/access/rules.ts then applies
// method-scoped rules as if any method could be meant.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { callVerify } from '../helpers/forward-auth.js';
import { login, withSession } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { startNginx, uriOnlyAuthRequestSite } from '../helpers/nginx.js';
import { testBed } from './setup.js';

const bed = await testBed(t, [{ username: 'alice', password: 'alice-Pw-0017' }]);
const dir = mkdtempSync(join(tmpdir(), 'sgw-method-spoof-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'rules.yaml'), '- { path: /export, methods: [GET], policy: deny }\n');
const gw = await bed.gateway({ GATEWAY_TRUSTED_PROXIES: '127.0.0.1', GATEWAY_ACCESS_RULES: join(dir, 'rules.yaml') });
const site = await startNginx(t, uriOnlyAuthRequestSite(gw.running.proxyPort, bed.upstream.port));
const alice = withSession(gw, await login(gw, 'alice', 'alice-Pw-0017'));

t.test('through a real nginx: the slipped-in X-Forwarded-Method changes nothing', async (t) => {
  const before = bed.upstream.received.length;
  for (const spoof of ['POST', 'PUT', 'DELETE']) {
    const res = await send(`${site}/export/all.csv`, { headers: { ...alice, 'x-forwarded-method': spoof } });
    t.equal(res.status, 403, `GET /export with X-Forwarded-Method: ${spoof}: 403`);
  }
  t.equal(bed.upstream.received.length, before, 'the app served nothing');
  const control = await send(`${site}/reports`, { headers: { ...alice, 'x-forwarded-method': 'POST' } });
  t.equal(control.status, 200, 'control: other paths are served');
});

t.test('at /_auth/verify: a method header counts only beside its own URI header', async (t) => {
  const asked = async (headers: Record<string, string>) => (await callVerify(gw, { ...alice, ...headers })).status;
  t.equal(await asked({ 'x-original-uri': '/export', 'x-forwarded-method': 'POST' }), 403, 'X-Original-URI + X-Forwarded-Method: the method is unknown');
  t.equal(await asked({ 'x-forwarded-uri': '/export', 'x-original-method': 'POST' }), 403, 'X-Forwarded-Uri + X-Original-Method: the same');
  t.equal(await asked({ 'x-original-uri': '/export', 'x-forwarded-uri': '/export', 'x-forwarded-method': 'POST' }), 403, 'both URIs, one method header: unknown');
  t.equal(await asked({ 'x-original-uri': '/export', 'x-original-method': 'GET' }), 403);
  t.equal(await asked({ 'x-original-uri': '/export', 'x-original-method': 'POST' }), 204, 'control: nginx naming the method in its convention');
  t.equal(await asked({ 'x-forwarded-uri': '/export', 'x-forwarded-method': 'POST' }), 204, 'control: Traefik/Caddy naming it in theirs');
});
