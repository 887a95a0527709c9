// Attack: an anonymous client signs in as `alice\u0000` (or with another control character).
// PostgreSQL refuses NUL in text, so the lookup failed: `503`, an error log line with a stack, and
// `gateway_store_errors_total{store="postgres"}` +1 per request — a free way to page the on-call
// (alert fuel) and to tell this name apart from a wrong password.
// Defence: src/login/routes.ts refuses a username with control characters as bad credentials before
// any user-store call: the same generic 401, counted as a failure, throttled as usual, verified
// against the dummy hash like an unknown user (SPEC section 4).
import t from 'tap';
import { scrapeMetric } from '../helpers/metrics.js';
import { jsonLogin, loginForm, postForm, testBed } from './setup.js';

const bed = await testBed(t, [{ username: 'alice', password: 'alice-Pw-0018' }]);
const gw = await bed.gateway({ GATEWAY_LOGIN_MAX_ATTEMPTS: '1000', GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: '10000' });

const NAMES = ['alice\u0000', '\u0000', 'al\u0000ice', 'alice\u0001', 'alice\u001b[31m', 'alice\u007f', 'alice\u0085', 'alice\r\nX-Admin: 1', 'alice\t'];
const metric = (name: string, labels: Record<string, string>) => scrapeMetric(gw.adminUrl, name, labels);
const errorLines = () => gw.logs.filter((line) => (JSON.parse(line) as { level: number }).level >= 50);

t.test('JSON: a control character in the name is a plain 401, like an unknown user', async (t) => {
  const unknown = await jsonLogin(gw, { username: 'nobody', password: 'whatever-0018' });
  t.equal(unknown.status, 401);
  const storeErrors = await metric('gateway_store_errors_total', { store: 'postgres' });
  const failures = await metric('gateway_logins_total', { outcome: 'failure' });
  const errorsBefore = errorLines().length;
  for (const username of NAMES) {
    const res = await jsonLogin(gw, { username, password: 'whatever-0018' });
    t.equal(res.status, 401, `${JSON.stringify(username)}: 401, not 503`);
    t.equal(res.body, unknown.body, `${JSON.stringify(username)}: the same generic answer`);
  }
  t.equal(await metric('gateway_store_errors_total', { store: 'postgres' }), storeErrors, 'no PostgreSQL error counted');
  t.equal(await metric('gateway_logins_total', { outcome: 'failure' }), failures + NAMES.length, 'each counted as a failed login');
  t.same(errorLines().slice(errorsBefore), [], 'no error log line');
});

t.test('the form: the same', async (t) => {
  const form = await loginForm(gw);
  const res = await postForm(gw, { csrf: form.token, username: 'alice\u0000', password: 'alice-Pw-0018', rd: '/' }, { sgw_csrf: form.csrfCookie });
  t.equal(res.status, 401, 'even with alice\'s right password: the name is not alice');
  t.match(res.body, /Invalid username or password/);
  t.equal(await metric('gateway_store_errors_total', { store: 'postgres' }), 0);
});

t.test('such names are throttled as usual', async (t) => {
  const strict = await bed.gateway({ GATEWAY_LOGIN_MAX_ATTEMPTS: '2', GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: '1000' });
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push((await jsonLogin(strict, { username: 'mallory\u0000', password: 'x' })).status);
  t.same(statuses, [401, 401, 429]);
});

t.test('control: alice signs in', async (t) => {
  t.equal((await jsonLogin(gw, { username: 'alice', password: 'alice-Pw-0018' })).status, 200);
});
