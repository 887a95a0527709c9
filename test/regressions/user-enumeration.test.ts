// Attack: find out which usernames exist (or are disabled) from the login answers, to aim guessing
// and phishing: a different status, message, header, cookie, page — or a throttle that only ever
// triggers for real accounts.
// Defence: src/login/routes.ts answers every failure with the same 401 and generic message (the
// reason goes to the audit log only), and counts unknown names like known ones in
// src/login/throttle.ts. (Equal timing is checked by hand with bench/login-timing.mjs.)
import t from 'tap';
import { uniquePrefix } from '../helpers/gateway.js';
import type { Response } from '../helpers/http.js';
import { jsonLogin, loginForm, postForm, testBed } from './setup.js';

const bed = await testBed(t, [
  { username: 'alice', password: 'alice-Pw-0008' },
  { username: 'dora', password: 'dora-Pw-0008', disabled: true },
]);
const gw = await bed.gateway({ GATEWAY_LOGIN_MAX_ATTEMPTS: '1000', GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: '10000' });

// Same-length names, so the only difference an attacker could see is the one under test.
const CASES = {
  unknown: { username: 'nobody', password: 'whatever-0008' },
  'wrong password': { username: 'alice', password: 'whatever-0008' },
  'disabled, wrong password': { username: 'dora', password: 'whatever-0008' },
  'disabled, right password': { username: 'dora', password: 'dora-Pw-0008' },
};

/** What a client can compare: status, header names and the values that are not per-request. */
function observable(res: Response, body: string) {
  const volatile = new Set(['date', 'set-cookie', 'x-request-id', 'content-length', 'keep-alive', 'connection']);
  // Retry-After counts down with the clock: compare that it is there, not its value.
  const headers = Object.entries(res.headers)
    .filter(([name]) => !volatile.has(name))
    .map(([name, value]) => [name, name === 'retry-after' ? 'present' : value])
    .sort(([a], [b]) => String(a).localeCompare(String(b)));
  const cookieNames = (res.headers['set-cookie'] ?? []).map((line) => line.replace(/=[^;]*/, '=…')).sort();
  return { status: res.status, headers, cookieNames, body };
}

t.test('JSON: unknown, wrong and disabled get byte-identical answers', async (t) => {
  const seen = [];
  for (const [label, body] of Object.entries(CASES)) {
    const res = await jsonLogin(gw, body);
    t.equal(res.status, 401, label);
    seen.push(observable(res, res.body));
  }
  for (const other of seen.slice(1)) t.same(other, seen[0]);
});

t.test('form: the same page for all, apart from the fresh CSRF token and the name typed', async (t) => {
  const seen = [];
  for (const [label, { username, password }] of Object.entries(CASES)) {
    const form = await loginForm(gw);
    const res = await postForm(gw, { username, password, rd: '/', csrf: form.token }, { sgw_csrf: form.csrfCookie });
    t.equal(res.status, 401, label);
    const page = res.body.replace(/name="csrf" value="[^"]*"/, 'name="csrf" value="…"').replaceAll(`value="${username}"`, 'value="…"');
    seen.push(observable(res, page));
  }
  for (const other of seen.slice(1)) t.same(other, seen[0]);
});

t.test('the audit log still tells the operator why', async (t) => {
  const reasons = gw.logs.map((l) => JSON.parse(l) as { audit?: string; reason?: string }).filter((e) => e.audit === 'login').map((e) => e.reason);
  t.ok(reasons.includes('unknown_user') && reasons.includes('wrong_password') && reasons.includes('disabled'));
});

t.test('an unknown name is throttled exactly like a real one', async (t) => {
  const g = await bed.gateway({ GATEWAY_REDIS_PREFIX: uniquePrefix(), GATEWAY_LOGIN_MAX_ATTEMPTS: '2', GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: '1000' });
  const run = async (username: string) => {
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await jsonLogin(g, { username, password: `guess-${i}` })).status);
    const last = await jsonLogin(g, { username, password: 'guess-x' });
    return { statuses, last: observable(last, last.body) };
  };
  const known = await run('alice');
  const unknown = await run('nobody');
  t.same(known.statuses, [401, 401, 429]);
  t.ok(known.last.headers.some(([name]) => name === 'retry-after'), 'with Retry-After');
  t.same(unknown, known, 'same sequence and same 429 for a name that does not exist');
});
