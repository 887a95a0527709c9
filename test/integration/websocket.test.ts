// WebSocket upgrades through the gateway against real Redis, PostgreSQL and a real WebSocket app
// (`ws`): refused before any upgrade without a session, identity injected and spoofs stripped on
// the upstream handshake, messages both ways, and sockets closed when their session ends — by
// logout, by revocation here or on another replica, by expiry — or when the gateway drains.
import t from 'tap';
import WebSocket from 'ws';
import { login as loginAs, seedUsers, startTestGateway, uniquePrefix, withSession, type TestGateway } from '../helpers/gateway.js';
import { cookieHeader, send } from '../helpers/http.js';
import { services } from '../helpers/services.js';
import { openSocket, rawUpgrade, startWebSocketUpstream, upgradeStatus, wsUrl, type Handshake, type TestSocket } from '../helpers/websocket.js';

const PASSWORD = 'correct horse battery';
/** Every session cookie the tests were given, to check none of them reaches a log line. */
const issued: string[] = [];
async function login(gateway: TestGateway, username: string, password: string): Promise<string> {
  const cookie = await loginAs(gateway, username, password);
  issued.push(cookie);
  return cookie;
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
type Asserts = Pick<typeof t, 'equal'>;

const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [
  { username: 'alice', password: PASSWORD, email: 'alice@example.com', groups: ['staff', 'ops'] },
  { username: 'bob', password: PASSWORD },
]);
const app = await startWebSocketUpstream();
t.teardown(() => app.close());
const prefix = uniquePrefix();
const base = { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_UPSTREAM: app.url, GATEWAY_REDIS_PREFIX: prefix, GATEWAY_PUBLIC_PATHS: '/public' };
const gw = await startTestGateway(t, base);

/** A signed-in socket: the session cookie, and the Origin a browser on the gateway's page sends. */
function sessionOptions(gateway: TestGateway, cookie: string, extra: Record<string, string> = {}) {
  return { headers: { ...withSession(gateway, cookie), origin: gateway.url, ...extra } };
}

async function signedInSocket(t: Asserts, gateway: TestGateway, cookie: string, path = '/ws'): Promise<TestSocket> {
  const socket = await openSocket(wsUrl(gateway.url, path), sessionOptions(gateway, cookie));
  t.equal(await socket.next(), 'hello', 'the app greets first');
  return socket;
}

async function metric(gateway: TestGateway, name: string): Promise<number> {
  const text = (await send(`${gateway.adminUrl}/metrics`)).body;
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

/**
 * A metric once it reaches `expected` (a socket is counted when both of its sides have closed,
 * a moment after the client sees its own close), or its value after a few seconds.
 */
async function metricReaching(gateway: TestGateway, name: string, expected: number): Promise<number> {
  const deadline = Date.now() + 5_000;
  let value = await metric(gateway, name);
  while (value !== expected && Date.now() < deadline) {
    await sleep(20);
    value = await metric(gateway, name);
  }
  return value;
}

/** `list` once it has grown to `length` entries, waiting a few seconds at most. */
async function grownTo<T>(list: T[], length: number): Promise<T[]> {
  const deadline = Date.now() + 5_000;
  while (list.length < length && Date.now() < deadline) await sleep(20);
  return list;
}

function omit(headers: Record<string, string>, name: string): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([key]) => key !== name));
}

const lastHandshake = (): Handshake => {
  const handshake = app.handshakes.at(-1);
  if (!handshake) throw new Error('the app saw no handshake');
  return handshake;
};

t.test('without a session the upgrade is refused with 401 and the app never sees it', async (t) => {
  const before = app.handshakes.length;
  const anonymous = await upgradeStatus(wsUrl(gw.url, '/ws'));
  t.equal(anonymous.status, 401);
  t.match(JSON.parse(anonymous.body), { error: 'authentication required' });
  const forged = await upgradeStatus(wsUrl(gw.url, '/ws'), { headers: { cookie: cookieHeader({ sgw_session: 'forged.value' }) } });
  t.equal(forged.status, 401, 'a cookie the gateway did not sign');
  const browser = await upgradeStatus(wsUrl(gw.url, '/ws'), { headers: { accept: 'text/html' } });
  t.equal(browser.status, 302, 'what a browser navigation to the same path would get');
  t.equal(app.handshakes.length, before, 'the app saw no handshake');
});

t.test('signed in: the socket opens and messages flow both ways', async (t) => {
  const cookie = await login(gw, 'alice', PASSWORD);
  const socket = await signedInSocket(t, gw, cookie);
  socket.ws.send('one');
  t.equal(await socket.next(), 'echo:one');
  socket.ws.send(Buffer.from([0, 1, 2, 255]));
  t.same(await socket.next(), Buffer.from([0, 1, 2, 255]), 'binary stays binary');
  t.equal(await metric(gw, 'gateway_websocket_connections'), 1);
  const closesBefore = app.closes.length;
  socket.ws.close(1000, 'bye');
  t.same(await socket.closed(), { code: 1000, reason: 'bye' });
  t.same((await grownTo(app.closes, closesBefore + 1)).at(-1), { code: 1000, reason: 'bye' }, 'the app got the client\'s close code and reason');
  t.equal(await metricReaching(gw, 'gateway_websocket_connections', 0), 0);
});

t.test('the app sees injected identity, not spoofed copies, nor the gateway\'s cookies', async (t) => {
  const cookie = await login(gw, 'alice', PASSWORD);
  const spoofs = {
    'X-Forwarded-User': 'admin',
    'x-forwarded-USER': 'root',
    X_Forwarded_User: 'admin',
    'x_forwarded_email': 'admin@example.com',
    'X-Forwarded-Groups': 'admins',
    'X-Gateway-Identity': 'admin',
  };
  const headers = { ...spoofs, cookie: `theme=dark; ${cookieHeader({ sgw_session: cookie, sgw_csrf: 'csrf-value' })}; app_sid=42`, origin: gw.url };
  const socket = await openSocket(wsUrl(gw.url, '/a//b/%7Euser?room=1&x=%2F'), { headers });
  t.equal(await socket.next(), 'hello');
  const seen = lastHandshake();
  t.equal(seen.url, '/a/b/~user?room=1&x=%2F', 'the normalised path, the query as sent');
  t.equal(seen.headers['x-forwarded-user'], 'alice');
  t.equal(seen.headers['x-forwarded-email'], 'alice@example.com');
  t.equal(seen.headers['x-forwarded-groups'], 'staff,ops');
  const identityNames = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase().replaceAll('_', '-'));
  for (const name of ['x-forwarded-user', 'x-forwarded-email', 'x-forwarded-groups']) {
    t.equal(identityNames.filter((n) => n === name).length, 1, `exactly one ${name}, the gateway's`);
  }
  t.notOk(identityNames.includes('x-gateway-identity'), 'the signed identity header name is stripped too');
  t.equal(seen.headers.cookie, 'theme=dark; app_sid=42', 'the app\'s cookies pass, the session and CSRF cookies do not');
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
  t.equal(seen.headers.host, new URL(gw.url).host, 'the client\'s Host (GATEWAY_PRESERVE_HOST)');
  t.equal(seen.headers.origin, gw.url, 'Origin passes, so the app can check it too');
  t.ok(seen.headers['x-request-id'], 'a request id');
  socket.ws.send('whoami');
  t.match(JSON.parse((await socket.next()) as string), { url: '/a/b/~user?room=1&x=%2F' });
  socket.ws.close();
  await socket.closed();
});

t.test('a public path upgrades without a session, with every identity header stripped', async (t) => {
  const socket = await openSocket(wsUrl(gw.url, '/public/feed'), { headers: { 'X-Forwarded-User': 'admin', X_Forwarded_User: 'admin' } });
  t.equal(await socket.next(), 'hello');
  const names = lastHandshake().rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase().replaceAll('_', '-'));
  t.notOk(names.includes('x-forwarded-user'));
  socket.ws.close();
  await socket.closed();
});

t.test('the subprotocol is the app\'s choice', async (t) => {
  const cookie = await login(gw, 'alice', PASSWORD);
  const socket = await openSocket(wsUrl(gw.url, '/ws'), { ...sessionOptions(gw, cookie), protocols: ['chat.v2', 'chat.v1'] });
  t.equal(socket.ws.protocol, 'chat.v1', 'not the first one offered');
  t.equal(lastHandshake().headers['sec-websocket-protocol'], 'chat.v2,chat.v1', 'the app saw the client\'s offer');
  socket.ws.close();
  await socket.closed();
});

t.test('the app refusing the upgrade, or being down, is a plain HTTP answer', async (t) => {
  const cookie = await login(gw, 'alice', PASSWORD);
  t.equal((await upgradeStatus(wsUrl(gw.url, '/refuse/x'), sessionOptions(gw, cookie))).status, 403, 'the app\'s 403');
  const down = await startTestGateway(t, { ...base, GATEWAY_UPSTREAM: 'http://127.0.0.1:9' });
  const downCookie = await login(down, 'alice', PASSWORD);
  const answer = await upgradeStatus(wsUrl(down.url, '/ws'), sessionOptions(down, downCookie));
  t.equal(answer.status, 502);
  t.notMatch(answer.body, '127.0.0.1:9', 'the app\'s address is not revealed');
});

t.test('a socket from another origin that carries a session is refused (cross-site WebSocket hijacking)', async (t) => {
  const cookie = await login(gw, 'alice', PASSWORD);
  const before = app.handshakes.length;
  t.equal((await upgradeStatus(wsUrl(gw.url, '/ws'), sessionOptions(gw, cookie, { origin: 'http://evil.example' }))).status, 403);
  t.equal((await upgradeStatus(wsUrl(gw.url, '/ws'), sessionOptions(gw, cookie, { 'sec-fetch-site': 'same-site' }))).status, 403);
  t.equal(app.handshakes.length, before, 'the app saw neither');
  t.equal((await upgradeStatus(wsUrl(gw.url, '/ws'), { headers: withSession(gw, cookie) })).status, 101, 'a non-browser client (no Origin) is fine');
});

t.test('bad upgrade input gets a 4xx, never reaches the app, and the gateway keeps serving', async (t) => {
  const cookie = await login(gw, 'alice', PASSWORD);
  const good = { ...withSession(gw, cookie), connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' };
  const before = app.handshakes.length;
  const cases: Array<[string, Parameters<typeof rawUpgrade>[2], number]> = [
    ['garbage key', { headers: { ...good, 'sec-websocket-key': 'not base64 at all!' } }, 400],
    ['key of the wrong length', { headers: { ...good, 'sec-websocket-key': 'c2hvcnQ=' } }, 400],
    ['no key', { headers: omit(good, 'sec-websocket-key') }, 400],
    ['two keys', { headers: [...Object.entries(good), ['sec-websocket-key', 'AAAAAAAAAAAAAAAAAAAAAA==']] as Array<[string, string]> }, 400],
    ['unknown version', { headers: { ...good, 'sec-websocket-version': '12' } }, 426],
    ['malformed subprotocols', { headers: { ...good, 'sec-websocket-protocol': 'chat,,v1' } }, 400],
    ['duplicated subprotocol', { headers: { ...good, 'sec-websocket-protocol': 'chat, chat' } }, 400],
    ['subprotocol with a space inside', { headers: { ...good, 'sec-websocket-protocol': 'chat v1' } }, 400],
    ['POST', { method: 'POST', headers: good }, 405],
    ['another protocol with a body', { method: 'POST', headers: { ...withSession(gw, cookie), connection: 'Upgrade', upgrade: 'h2c', 'content-type': 'text/plain' }, body: 'hello' }, 400],
  ];
  for (const [name, options, status] of cases) {
    const res = await rawUpgrade(gw.url, '/ws', options);
    t.equal(res.status, status, `${name}: ${res.body}`);
    if (status === 426) t.equal(res.headers['sec-websocket-version'], '13', 'the version we speak is named');
  }
  const badPath = await rawUpgrade(gw.url, '/a/%2e%2e/%2e%2e/etc', { headers: good });
  t.equal(badPath.status, 400, 'a path that cannot be normalised');
  const anonymous = await rawUpgrade(gw.url, '/ws', { headers: { ...omit(good, 'cookie'), 'sec-websocket-key': 'garbage' } });
  t.equal(anonymous.status, 401, 'without a session the answer is 401 whatever the handshake');
  t.equal(app.handshakes.length, before, 'the app saw none of them');

  const requestsBefore = app.requests.length;
  const h2c = await rawUpgrade(gw.url, '/plain', { headers: { ...withSession(gw, cookie), connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAAQCAAAAAAIAAAAA' } });
  t.equal(h2c.status, 200, 'an h2c upgrade without a body is served as plain HTTP, as before');
  t.equal(app.requests.length, requestsBefore + 1);
  t.equal(app.requests.at(-1)?.headers['x-forwarded-user'], 'alice');
  t.notOk(app.requests.at(-1)?.headers.upgrade, 'without the Upgrade header');

  const socket = await signedInSocket(t, gw, cookie);
  socket.ws.send('still fine');
  t.equal(await socket.next(), 'echo:still fine');
  socket.ws.close();
  await socket.closed();
});

t.test('logout on another connection closes the socket with 1008', async (t) => {
  const cookie = await login(gw, 'alice', PASSWORD);
  const socket = await signedInSocket(t, gw, cookie);
  const closesBefore = app.closes.length;
  const logout = await send(`${gw.url}/_auth/logout`, { method: 'POST', headers: withSession(gw, cookie) });
  t.equal(logout.status, 303);
  t.same(await socket.closed(), { code: 1008, reason: 'session ended' });
  t.same((await grownTo(app.closes, closesBefore + 1)).slice(closesBefore), [{ code: 1008, reason: 'session ended' }], 'the app is told why too');
  t.equal((await upgradeStatus(wsUrl(gw.url, '/ws'), sessionOptions(gw, cookie))).status, 401, 'and the cookie opens nothing now');
});

t.test('revoking a user closes each of their sockets, and nobody else\'s', async (t) => {
  const alice1 = await signedInSocket(t, gw, await login(gw, 'alice', PASSWORD));
  const alice2 = await signedInSocket(t, gw, await login(gw, 'alice', PASSWORD), '/other');
  const bob = await signedInSocket(t, gw, await login(gw, 'bob', PASSWORD));
  const endedBefore = await metric(gw, 'gateway_websocket_closes_total{reason="session_ended"}');
  t.ok((await gw.running.deps.sessions.revokeUser('alice')) >= 2);
  t.same(await alice1.closed(), { code: 1008, reason: 'session ended' });
  t.same(await alice2.closed(), { code: 1008, reason: 'session ended' });
  bob.ws.send('are you there');
  t.equal(await bob.next(), 'echo:are you there', 'bob\'s socket is untouched');
  t.equal(bob.ws.readyState, WebSocket.OPEN);
  t.equal(await metricReaching(gw, 'gateway_websocket_closes_total{reason="session_ended"}', endedBefore + 2), endedBefore + 2);
  bob.ws.close();
  await bob.closed();
});

t.test('a revocation on another replica closes the socket on this one', async (t) => {
  const other = await startTestGateway(t, base);
  const cookie = await login(gw, 'alice', PASSWORD);
  const socket = await signedInSocket(t, gw, cookie);
  const logout = await send(`${other.url}/_auth/logout`, { method: 'POST', headers: withSession(other, cookie) });
  t.equal(logout.status, 303, 'logged out through the other replica');
  t.same(await socket.closed(), { code: 1008, reason: 'session ended' });

  const second = await signedInSocket(t, gw, await login(gw, 'bob', PASSWORD));
  await other.running.deps.sessions.revokeUser('bob');
  t.same(await second.closed(), { code: 1008, reason: 'session ended' }, 'sessions revoke <user> run against the other replica');
});

t.test('expiry: an idle session\'s socket is closed at the next check; messages from the client are activity', async (t) => {
  const short = await startTestGateway(t, { ...base, GATEWAY_SESSION_IDLE_TIMEOUT: '2s', GATEWAY_SESSION_TOUCH_INTERVAL: '500ms', GATEWAY_WEBSOCKET_REVALIDATE_INTERVAL: '200ms' });
  const idleCookie = await login(short, 'alice', PASSWORD);
  const activeCookie = await login(short, 'bob', PASSWORD);
  const idle = await signedInSocket(t, short, idleCookie);
  const active = await signedInSocket(t, short, activeCookie);
  // Bob keeps talking for twice the idle timeout, without any HTTP request.
  for (let i = 0; i < 16; i++) {
    active.ws.send(`tick ${i}`);
    t.equal(await active.next(), `echo:tick ${i}`);
    await sleep(250);
  }
  t.same(await idle.closed(), { code: 1008, reason: 'session ended' }, 'the silent one was closed');
  t.equal((await send(`${short.url}/x`, { headers: withSession(short, idleCookie) })).status, 401, 'its session is gone');
  t.equal(active.ws.readyState, WebSocket.OPEN, 'the talking one is still open');
  t.equal((await send(`${short.url}/x`, { headers: withSession(short, activeCookie) })).status, 200, 'and its session is alive');
  t.same(await active.closed(10_000), { code: 1008, reason: 'session ended' }, 'once silent, it expires too');
});

t.test('a client that stops answering pings is cut; an oversized message closes with 1009', async (t) => {
  const strict = await startTestGateway(t, { ...base, GATEWAY_WEBSOCKET_REVALIDATE_INTERVAL: '200ms', GATEWAY_WEBSOCKET_MAX_MESSAGE_BYTES: '1024' });
  const cookie = await login(strict, 'alice', PASSWORD);
  const mute = await openSocket(wsUrl(strict.url, '/ws'), { ...sessionOptions(strict, cookie), autoPong: false });
  t.equal((await mute.closed()).code, 1006, 'terminated without a closing handshake');
  t.equal(await metricReaching(strict, 'gateway_websocket_closes_total{reason="unresponsive"}', 1), 1);

  const big = await signedInSocket(t, strict, cookie);
  big.ws.send('x'.repeat(2048));
  t.equal((await big.closed()).code, 1009, 'message too big');
  t.equal(await metricReaching(strict, 'gateway_websocket_closes_total{reason="protocol_error"}', 1), 1);
  t.equal(await metricReaching(strict, 'gateway_websocket_connections', 0), 0);
});

t.test('SIGTERM drain closes open sockets with 1001 instead of waiting for them', async (t) => {
  const draining = await startTestGateway(t, { ...base, GATEWAY_SHUTDOWN_TIMEOUT: '60s' });
  const socket = await signedInSocket(t, draining, await login(draining, 'alice', PASSWORD));
  const publicSocket = await openSocket(wsUrl(draining.url, '/public/feed'));
  const stopped = draining.stop();
  t.same(await socket.closed(), { code: 1001, reason: 'server shutting down' });
  t.same(await publicSocket.closed(), { code: 1001, reason: 'server shutting down' });
  let finished = false;
  void stopped.then(() => (finished = true));
  for (let i = 0; i < 100 && !finished; i++) await sleep(50);
  t.ok(finished, 'the drain finished well before its 60 s timeout');
});

t.test('the logs show each socket and why it closed, never a cookie, and no errors', async (t) => {
  const lines = gw.logs.map((line) => JSON.parse(line) as Record<string, unknown>);
  t.ok(lines.some((l) => l.msg === 'request' && l.status === 101 && l.user === 'alice'), 'an access line for an upgrade');
  t.ok(lines.some((l) => l.msg === 'websocket closed' && l.reason === 'session_ended' && l.user === 'alice'), 'a line for a socket ended with its session');
  t.same(lines.filter((l) => (l.level as number) >= 50), [], 'nothing at error level');
  for (const cookie of issued) t.notOk(gw.logs.some((line) => line.includes(cookie)), 'no session cookie in the logs');
});

t.test('Redis down: open sockets fail closed at the next check (1013), like requests (503)', async (t) => {
  if (redis.external) throw new Error('this test stops Redis: unset TEST_REDIS_URL');
  const checked = await startTestGateway(t, { ...base, GATEWAY_WEBSOCKET_REVALIDATE_INTERVAL: '200ms', GATEWAY_REDIS_COMMAND_TIMEOUT: '300ms' });
  const socket = await signedInSocket(t, checked, await login(checked, 'alice', PASSWORD));
  await redis.stop();
  t.teardown(() => redis.start());
  t.same(await socket.closed(10_000), { code: 1013, reason: 'session store unavailable' });
  await redis.start();
});
