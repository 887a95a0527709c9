// Open WebSockets by credential, against the real session manager, in-process store and token
// invalidation: a session that ends (destroyed, revoked, expired) or a token revoked ends its
// sockets and only its sockets; a user change checks that user's token and Basic sockets again;
// a drain ends all.
import t from 'tap';
import { createCookieSigner } from '../../src/session/id.js';
import { createLocalSessionCache } from '../../src/session/local-cache.js';
import { createSessionManager } from '../../src/session/manager.js';
import { createMemorySessionStore } from '../../src/session/memory-store.js';
import { hashSessionId } from '../../src/session/id.js';
import { createWebSocketRegistry, type OpenSocket, type SocketCredential, type WebSocketRegistry } from '../../src/proxy/websocket-registry.js';
import { createTokenInvalidation } from '../../src/tokens/invalidation.js';

const SECRET = 'unit-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const INTERVAL_MS = 100;

function setup(t: { teardown(fn: () => void): void }) {
  let clock = 1_000_000;
  const now = () => clock;
  const store = createMemorySessionStore({ now });
  const signer = createCookieSigner([SECRET]);
  const sessions = createSessionManager({
    store,
    signer,
    cache: createLocalSessionCache({ maxEntries: 100, ttlMs: 60_000 }),
    idleTimeoutMs: 10_000,
    maxLifetimeMs: 60_000,
    touchIntervalMs: 1_000,
    now,
  });
  // In-process: no Redis to publish on, messages are delivered here directly.
  const tokenInvalidation = createTokenInvalidation(store, null);
  const registry = createWebSocketRegistry({ sessions, credentials: tokenInvalidation, revalidateIntervalMs: INTERVAL_MS });
  t.teardown(() => registry.stop());
  /** A session credential as the proxy builds it for a cookie. */
  const signIn = async (user: string): Promise<SocketCredential & { cookieValue: string }> => {
    const { cookieValue } = await sessions.create({ user, email: null, groups: [] });
    const unsigned = signer.unsign(cookieValue);
    if (!unsigned) throw new Error('cookie did not verify');
    return { key: hashSessionId(unsigned.id), user, cookieValue, stillValid: async (touch) => (await sessions.validate(cookieValue, { touch })).outcome === 'valid' };
  };
  return { sessions, registry, signIn, tokenInvalidation, advance: (ms: number) => (clock += ms) };
}

/** A token or Basic credential whose validity the test sets, counting how often it is asked. */
function headerCredential(key: string, user: string) {
  const credential = {
    key,
    user,
    valid: true as boolean,
    failing: false as boolean,
    checks: 0,
    async stillValid() {
      credential.checks++;
      if (credential.failing) throw new Error('token store down');
      return credential.valid;
    },
  };
  return credential;
}

interface FakeSocket extends OpenSocket {
  ended: Array<[number, string, string]>;
  pings: number;
}

/** A socket as the proxy registers it; ending it removes it, as the real close handlers do. */
function socketOf(registry: WebSocketRegistry, credential: SocketCredential | null): FakeSocket {
  const socket: FakeSocket = {
    credential,
    active: false,
    ended: [],
    pings: 0,
    end(code, text, reason) {
      if (this.ended.length > 0) return;
      this.ended.push([code, text, reason]);
      registry.remove(this);
    },
    heartbeat() {
      this.pings++;
    },
  };
  registry.add(socket);
  return socket;
}

const tick = (ms = INTERVAL_MS * 3) => new Promise((resolve) => setTimeout(resolve, ms));

t.test('a destroyed session ends each of its sockets at once, and no other', async (t) => {
  const { sessions, registry, signIn } = setup(t);
  const alice = await signIn('alice');
  const bob = await signIn('bob');
  const a1 = socketOf(registry, alice);
  const a2 = socketOf(registry, alice);
  const b = socketOf(registry, bob);
  const anonymous = socketOf(registry, null);
  await sessions.destroy(alice.cookieValue);
  t.same(a1.ended, [[1008, 'session ended', 'session_ended']]);
  t.same(a2.ended, [[1008, 'session ended', 'session_ended']]);
  t.same(b.ended, []);
  t.same(anonymous.ended, []);
  t.equal(registry.size, 2);
});

t.test('revokeUser ends the sockets of every session of that user', async (t) => {
  const { sessions, registry, signIn } = setup(t);
  const first = socketOf(registry, await signIn('carol'));
  const second = socketOf(registry, await signIn('carol'));
  t.equal(await sessions.revokeUser('carol'), 2);
  t.equal(first.ended.length, 1);
  t.equal(second.ended.length, 1);
});

t.test('the periodic check ends sockets whose session expired, pings every socket, and counts activity', async (t) => {
  const { sessions, registry, signIn, advance } = setup(t);
  const quiet = socketOf(registry, await signIn('dave'));
  const erin = await signIn('erin');
  const talking = socketOf(registry, erin);
  const publicSocket = socketOf(registry, null);
  for (let i = 0; i < 3; i++) {
    advance(4_000);
    talking.active = true;
    await tick();
    t.equal(talking.active, false, 'activity is consumed by the check');
  }
  t.same(quiet.ended, [[1008, 'session ended', 'session_ended']], 'idle for 12 s of a 10 s timeout');
  t.same(talking.ended, [], 'its messages counted as activity');
  t.same(publicSocket.ended, [], 'nothing to expire without a session');
  t.ok(publicSocket.pings >= 1, 'every socket is pinged');
  t.equal((await sessions.validate(erin.cookieValue)).outcome, 'valid');
});

t.test('a revoked token ends the sockets opened with it at once, and no other', async (t) => {
  const { registry, tokenInvalidation, signIn } = setup(t);
  const token = headerCredential('t:hash-one', 'alice');
  const other = headerCredential('t:hash-two', 'alice');
  const viaToken = [socketOf(registry, token), socketOf(registry, token)];
  const viaOther = socketOf(registry, other);
  const viaSession = socketOf(registry, await signIn('alice'));
  await tokenInvalidation.tokenRevoked('hash-one');
  for (const socket of viaToken) t.same(socket.ended, [[1008, 'session ended', 'session_ended']]);
  t.same(viaOther.ended, [], "the user's other token keeps its socket");
  t.same(viaSession.ended, [], "and so does the user's session");
  t.equal(token.checks, 0, 'ended without asking a store');
});

t.test("a user change checks that user's token and Basic sockets at once: closed if no longer valid", async (t) => {
  const { registry, tokenInvalidation } = setup(t);
  const basic = headerCredential('b:keyed', 'bob');
  const token = headerCredential('t:bobs', 'bob');
  const carols = headerCredential('t:carols', 'carol');
  const [viaBasic, viaToken, viaCarols] = [socketOf(registry, basic), socketOf(registry, token), socketOf(registry, carols)];
  basic.valid = false; // bob's password changed: the Basic credential no longer verifies
  await tokenInvalidation.userChanged('bob');
  await tick(10);
  t.same(viaBasic.ended, [[1008, 'session ended', 'session_ended']]);
  t.same(viaToken.ended, [], 'a token that still verifies keeps its socket');
  t.equal(token.checks, 1, 'but it was checked');
  t.equal(carols.checks, 0, "another user's sockets are not checked");
  t.same(viaCarols.ended, []);
  token.valid = false; // bob disabled: his tokens refused too
  await tokenInvalidation.userChanged('bob');
  await tick(10);
  t.same(viaToken.ended, [[1008, 'session ended', 'session_ended']]);
});

t.test('token sockets are checked every interval (expiry), and fail closed with 1013 when the check cannot answer', async (t) => {
  const { registry } = setup(t);
  const expiring = headerCredential('t:brief', 'dave');
  const unanswered = headerCredential('t:store-down', 'dave');
  const [viaExpiring, viaUnanswered] = [socketOf(registry, expiring), socketOf(registry, unanswered)];
  await tick();
  t.ok(expiring.checks >= 1, 'checked on the interval');
  t.same(viaExpiring.ended, []);
  expiring.valid = false;
  unanswered.failing = true;
  await tick();
  t.same(viaExpiring.ended, [[1008, 'session ended', 'session_ended']]);
  t.same(viaUnanswered.ended, [[1013, 'session store unavailable', 'store_unavailable']]);
});

t.test('closeAll ends every socket with 1001 and resolves once all are gone', async (t) => {
  const { registry, signIn } = setup(t);
  const sockets = [socketOf(registry, await signIn('frank')), socketOf(registry, null)];
  await registry.closeAll();
  for (const socket of sockets) t.same(socket.ended, [[1001, 'server shutting down', 'shutdown']]);
  t.equal(registry.size, 0);
  await registry.closeAll();
  t.pass('a second drain with nothing open resolves at once');
});
