// Attack: someone with a Redis dump, a replica, a backup, `MONITOR` or `SUBSCRIBE` access reads the
// session store and replays what they find as a cookie to take over signed-in users.
// Defence: src/session/id.ts + src/session/redis-store.ts — keys, user indexes and invalidation
// messages hold a truncated SHA-256 of the session id, never the id; records hold no secret; the
// cookie also carries an HMAC that needs GATEWAY_SESSION_SECRET, which is not in Redis.
import t from 'tap';
import { Redis } from 'ioredis';
import { login, withSession } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { apiGet, browserLogin, jsonLogin, loginForm, sleep, testBed } from './setup.js';

const PASSWORDS = { alice: 'alice-Pw-0013', bob: 'bob-Pw-0013' };
const bed = await testBed(t, [
  { username: 'alice', password: PASSWORDS.alice, email: 'alice@example.com', groups: ['staff'] },
  { username: 'bob', password: PASSWORDS.bob },
]);
const gw = await bed.gateway({ GATEWAY_SESSION_TOUCH_INTERVAL: '1s' });

// Everything published on the invalidation channel, as a subscriber with Redis access would see it.
const subscriber = new Redis(bed.redis.url);
t.teardown(() => subscriber.disconnect());
const published: string[] = [];
subscriber.on('message', (_channel: string, message: string) => void published.push(message));
await subscriber.subscribe(`${bed.prefix}invalidate`);

// Real activity: JSON and form logins, requests (idle-deadline touches), a logout, failed logins.
const cookies = [await login(gw, 'alice', PASSWORDS.alice), await login(gw, 'bob', PASSWORDS.bob)];
const form = await loginForm(gw);
const formRes = await browserLogin(gw, { username: 'alice', password: PASSWORDS.alice, rd: '/' });
cookies.push(formRes.cookies.sgw_session ?? '');
for (const c of cookies) await apiGet(gw, '/x', c);
await sleep(1_100);
for (const c of cookies) await apiGet(gw, '/x', c);
const loggedOut = await login(gw, 'bob', PASSWORDS.bob);
await send(`${gw.url}/_auth/logout`, { method: 'POST', headers: withSession(gw, loggedOut) });
await jsonLogin(gw, { username: 'alice', password: 'a-wrong-guess' });
await sleep(200);

/** Every key, every value of every type, and every published message. */
async function dump(): Promise<string[]> {
  const client = new Redis(bed.redis.url);
  try {
    const out: string[] = [...published];
    const keys = await client.keys('*');
    for (const key of keys) {
      out.push(key);
      const type = await client.type(key);
      if (type === 'string') out.push((await client.get(key)) ?? '');
      else if (type === 'zset') out.push(...(await client.zrange(key, 0, -1, 'WITHSCORES')));
      else if (type === 'hash') out.push(...Object.entries(await client.hgetall(key)).flat());
      else if (type === 'set') out.push(...(await client.smembers(key)));
      else if (type === 'list') out.push(...(await client.lrange(key, 0, -1)));
    }
    return out;
  } finally {
    client.disconnect();
  }
}

const secretsOf = (cookie: string) => {
  const dot = cookie.lastIndexOf('.');
  return [cookie, encodeURIComponent(cookie), cookie.slice(0, dot), cookie.slice(dot + 1)];
};

t.test('the dump holds sessions, yet no cookie, session id, signature, CSRF value or password', async (t) => {
  const corpus = await dump();
  t.ok(corpus.some((v) => v.startsWith(`${bed.prefix}s:`)), 'session keys are there');
  t.ok(published.length > 0, 'an invalidation was published and captured');
  const secrets = [...cookies, loggedOut].flatMap(secretsOf).concat([form.csrfCookie, form.token, PASSWORDS.alice, PASSWORDS.bob]);
  const leaks = corpus.filter((v) => secrets.some((s) => s.length >= 8 && v.includes(s)));
  t.same(leaks, []);
});

t.test('no string found in the dump opens a session when presented as the cookie', async (t) => {
  const corpus = await dump();
  const candidates = new Set<string>();
  for (const value of corpus) {
    candidates.add(value);
    for (const token of value.split(/[^A-Za-z0-9_\-.]+/)) if (token.length >= 16) candidates.add(token);
    // With the key prefix stripped, a hash is exactly what a naive store would have used as the id.
    const colon = value.lastIndexOf(':');
    if (colon >= 0) candidates.add(value.slice(colon + 1));
  }
  t.ok(candidates.size > 5, `${candidates.size} candidate values tried`);
  const opened: string[] = [];
  for (const candidate of candidates) {
    if (candidate.length > 3_000) continue;
    const res = await apiGet(gw, '/x', candidate);
    if (res.status !== 401) opened.push(`${res.status} ${candidate.slice(0, 40)}`);
  }
  t.same(opened, []);
  t.equal((await apiGet(gw, '/x', cookies[0] as string)).status, 200, 'control: the real cookie still works');
});
