// WebSockets opened with an API token or HTTP Basic (SPEC 9) live on like any socket, so they are
// checked again like a session's: against real Redis, PostgreSQL, a real WebSocket app and two
// gateway replicas. A token revoked on the other replica (`tokens revoke` publishes `t:<hash>`)
// closes its sockets at once with 1008, and only those; a disabled user's Basic and token sockets
// close at once (`users disable` publishes `u:<user>`); an expired token's socket closes at the
// next check. The app is told why, and the credential reaches no log line.
import t from 'tap';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { migrateTokens } from '../../src/tokens/migrations.js';
import { createToken } from '../../src/tokens/token-admin.js';
import { createPostgresTokenStore } from '../../src/tokens/token-store.js';
import { createPostgresUserStore } from '../../src/users/user-store.js';
import { seedUsers, startTestGateway, uniquePrefix, type TestGateway } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { services } from '../helpers/services.js';
import { openSocket, startWebSocketUpstream, upgradeStatus, wsUrl, type TestSocket } from '../helpers/websocket.js';

const PASSWORDS = { alice: 'alice-Pw-0115-long', bob: 'bob-Pw-0115-long' };
const { redis, pg } = await services(t);
const pool = await seedUsers(t, pg.url, [
  { username: 'alice', password: PASSWORDS.alice, email: 'alice@example.com' },
  { username: 'bob', password: PASSWORDS.bob },
]);
await migrateTokens(pool);
const app = await startWebSocketUpstream();
t.teardown(() => app.close());
const prefix = uniquePrefix();
const env = {
  REDIS_URL: redis.url,
  DATABASE_URL: pg.url,
  GATEWAY_UPSTREAM: app.url,
  GATEWAY_REDIS_PREFIX: prefix,
  GATEWAY_BASIC_AUTH: 'true',
  GATEWAY_WEBSOCKET_REVALIDATE_INTERVAL: '300ms',
};
const [one, two] = await Promise.all([startTestGateway(t, env), startTestGateway(t, env)]);
const tokens = createPostgresTokenStore(pool);
const users = createPostgresUserStore(pool);
const issue = async (user: string, name: string, expiresInMs: number | null = null) => (await createToken(tokens, (n) => users.find(n), { user, name, expiresInMs })).token;
const publisher = new Redis(redis.url);
t.teardown(() => publisher.disconnect());
/** What `tokens revoke` and `users disable` announce to every replica. */
const announce = (message: string) => publisher.publish(`${prefix}invalidate`, message);
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const basic = (user: keyof typeof PASSWORDS) => ({ authorization: `Basic ${Buffer.from(`${user}:${PASSWORDS[user]}`).toString('base64')}` });
const secrets: string[] = [...Object.values(PASSWORDS)];
type Asserts = Pick<typeof t, 'equal'>;

async function socketWith(t: Asserts, gateway: TestGateway, headers: Record<string, string>, path = '/ws'): Promise<TestSocket> {
  // Basic is sent by a browser by itself (ambient), so the cross-site rule wants the page's Origin.
  const socket = await openSocket(wsUrl(gateway.url, path), { headers: { ...headers, origin: gateway.url } });
  t.equal(await socket.next(), 'hello', 'the app greets first');
  return socket;
}

async function stillOpen(t: Asserts, socket: TestSocket, label: string): Promise<void> {
  socket.ws.send('ping');
  t.equal(await socket.next(), 'echo:ping', `${label}: messages still flow`);
  t.equal(socket.ws.readyState, WebSocket.OPEN, `${label}: still open`);
}

t.test('a token revoked on the other replica closes the sockets opened with it, at once, and no other', async (t) => {
  const token = await issue('alice', 'ws-revoke');
  const keep = await issue('alice', 'ws-keep');
  secrets.push(token, keep);
  const revoked = [await socketWith(t, one, bearer(token)), await socketWith(t, one, bearer(token), '/other')];
  const kept = await socketWith(t, one, bearer(keep));
  const viaBasic = await socketWith(t, one, basic('alice'));
  t.equal(app.handshakes.at(-1)?.headers['x-forwarded-user'], 'alice', 'the app saw the identity, as for a session');
  t.equal(app.handshakes.at(-1)?.headers.authorization, undefined, 'and not the credential');

  // As `tokens revoke` run against the other replica does it: delete, then publish the hash.
  const hash = await tokens.revoke('alice', 'ws-revoke');
  t.ok(hash, 'the token existed');
  const started = Date.now();
  await announce(`t:${hash}`);
  for (const socket of revoked) t.same(await socket.closed(2_000), { code: 1008, reason: 'session ended' });
  t.ok(Date.now() - started < 2_000, `closed ${Date.now() - started} ms after the revocation, well before the ${env.GATEWAY_WEBSOCKET_REVALIDATE_INTERVAL} check could have`);
  await stillOpen(t, kept, "the user's other token");
  await stillOpen(t, viaBasic, "the user's Basic socket");
  t.equal((await upgradeStatus(wsUrl(one.url, '/ws'), { headers: { ...bearer(token), origin: one.url } })).status, 401, 'and the token opens nothing now');
  kept.ws.close();
  viaBasic.ws.close();
  await Promise.all([kept.closed(), viaBasic.closed()]);
});

t.test("a disabled user's Basic and token sockets close at once; another user's stay", async (t) => {
  const token = await issue('bob', 'ws-disable');
  secrets.push(token);
  const viaToken = await socketWith(t, two, bearer(token));
  const viaBasic = await socketWith(t, two, basic('bob'));
  const alices = await socketWith(t, two, basic('alice'));
  await pool.query('UPDATE gateway_users SET disabled = true WHERE username = $1', ['bob']);
  t.teardown(() => pool.query('UPDATE gateway_users SET disabled = false WHERE username = $1', ['bob']));
  await announce('u:bob');
  t.same(await viaToken.closed(2_000), { code: 1008, reason: 'session ended' }, 'the token socket');
  t.same(await viaBasic.closed(2_000), { code: 1008, reason: 'session ended' }, 'the Basic socket');
  await stillOpen(t, alices, "alice's Basic socket");
  const closes = await send(`${two.adminUrl}/metrics`);
  t.match(closes.body, /gateway_websocket_closes_total\{reason="session_ended"\} [1-9]/, 'counted as ended');
  alices.ws.close();
  await alices.closed();
});

t.test("an expired token's socket closes at the next check", async (t) => {
  const issued = Date.now();
  const token = await issue('alice', 'ws-brief', 1_500);
  secrets.push(token);
  const socket = await socketWith(t, one, bearer(token));
  t.same(await socket.closed(5_000), { code: 1008, reason: 'session ended' });
  t.ok(Date.now() - issued >= 1_450, 'not before the token expired');
});

t.test('no token or password in any log line', async (t) => {
  const logs = [...one.logs, ...two.logs].join('\n');
  t.ok(logs.includes('websocket closed'), 'the sockets were logged');
  for (const secret of secrets) t.notOk(logs.includes(secret.slice(-12)), 'a credential in a log line');
  t.notOk(logs.includes(basic('alice').authorization.slice(6)), 'a Basic header in a log line');
});
