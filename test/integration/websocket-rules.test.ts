// Access rules on WebSocket upgrades: the same decision as for requests, taken before any upgrade,
// so a deny or groups rule cannot be walked around by opening a socket instead.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession, type TestGateway } from '../helpers/gateway.js';
import { services } from '../helpers/services.js';
import { startWebSocketUpstream, upgradeStatus, wsUrl } from '../helpers/websocket.js';

const dir = mkdtempSync(join(tmpdir(), 'sgw-ws-rules-'));
writeFileSync(join(dir, 'rules.json'), JSON.stringify([
  { path: '/feeds/public', policy: 'public' },
  { path: '/feeds/admin', policy: { groups: ['admins'] }, forward_groups: ['admins'] },
  { path: '/feeds/internal', policy: 'deny' },
]));

const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [
  { username: 'ada', password: 'ada-ws-password', groups: ['admins', 'payroll'] },
  { username: 'bob', password: 'bob-ws-password', groups: ['staff'] },
]);
const app = await startWebSocketUpstream();
t.teardown(() => app.close());
const gw = await startTestGateway(t, {
  REDIS_URL: redis.url,
  DATABASE_URL: pg.url,
  GATEWAY_UPSTREAM: app.url,
  GATEWAY_REDIS_PREFIX: uniquePrefix(),
  GATEWAY_ACCESS_RULES: join(dir, 'rules.json'),
});
const ada = await login(gw, 'ada', 'ada-ws-password');
const bob = await login(gw, 'bob', 'bob-ws-password');
const as = (gateway: TestGateway, cookie: string | null) => ({ headers: { ...(cookie ? withSession(gateway, cookie) : {}), origin: gateway.url } });

t.test('the rule table for upgrades; refused ones never reach the app', async (t) => {
  const cases: Array<[who: string, cookie: string | null, path: string, status: number]> = [
    ['anonymous', null, '/feeds/public/ticker', 101],
    ['anonymous', null, '/feeds/admin/live', 401],
    ['bob', bob, '/feeds/admin/live', 403],
    ['ada', ada, '/feeds/admin/live', 101],
    ['ada', ada, '/feeds/internal/x', 403],
    ['ada', ada, '/feeds/%69nternal/x', 403],
    ['bob', bob, '/feeds/other', 101],
  ];
  for (const [who, cookie, path, status] of cases) {
    const before = app.handshakes.length;
    const res = await upgradeStatus(wsUrl(gw.url, path), as(gw, cookie));
    t.equal(res.status, status, `${who} ${path}`);
    if (status !== 101) t.equal(app.handshakes.length, before, `${who} ${path}: the app saw no handshake`);
  }
});

t.test('forward_groups narrows the groups on the upstream handshake', async (t) => {
  const before = app.handshakes.length;
  t.equal((await upgradeStatus(wsUrl(gw.url, '/feeds/admin/live'), as(gw, ada))).status, 101);
  t.equal(app.handshakes[before]?.headers['x-forwarded-groups'], 'admins');
});
