// Open WebSockets by session, against the real session manager and in-process store: a session
// that ends (destroyed, revoked, expired) ends its sockets and only its sockets; a drain ends all.
import t from 'tap';
import { createCookieSigner } from '../../src/session/id.js';
import { createLocalSessionCache } from '../../src/session/local-cache.js';
import { createSessionManager } from '../../src/session/manager.js';
import { createMemorySessionStore } from '../../src/session/memory-store.js';
import { hashSessionId } from '../../src/session/id.js';
import { createWebSocketRegistry, type OpenSocket, type WebSocketRegistry } from '../../src/proxy/websocket-registry.js';

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
  const registry = createWebSocketRegistry({ sessions, revalidateIntervalMs: INTERVAL_MS });
  t.teardown(() => registry.stop());
  const signIn = async (user: string) => {
    const { cookieValue } = await sessions.create({ user, email: null, groups: [] });
    const unsigned = signer.unsign(cookieValue);
    if (!unsigned) throw new Error('cookie did not verify');
    return { cookieValue, idHash: hashSessionId(unsigned.id) };
  };
  return { sessions, registry, signIn, advance: (ms: number) => (clock += ms) };
}

interface FakeSocket extends OpenSocket {
  ended: Array<[number, string, string]>;
  pings: number;
}

/** A socket as the proxy registers it; ending it removes it, as the real close handlers do. */
function socketOf(registry: WebSocketRegistry, session: OpenSocket['session']): FakeSocket {
  const socket: FakeSocket = {
    session,
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
  const talking = socketOf(registry, await signIn('erin'));
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
  t.equal((await sessions.validate(talking.session?.cookieValue)).outcome, 'valid');
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
