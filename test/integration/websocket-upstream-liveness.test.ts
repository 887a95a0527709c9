// The app's side of a proxied WebSocket is pinged too: an app that stops answering (a host gone
// without closing its connections) has its socket cut and the client told, instead of the client's
// socket staying open until its session ends.
import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { services } from '../helpers/services.js';
import { openSocket, wsUrl } from '../helpers/websocket.js';

const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [{ username: 'alice', password: 'alice-ws-liveness' }]);

// An app that accepts the socket, then never answers a ping (as if its host vanished).
const server = createServer();
const wss = new WebSocketServer({ noServer: true, autoPong: false });
server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => ws.send('hello')));
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
t.teardown(
  () =>
    new Promise<void>((resolve) => {
      for (const ws of wss.clients) ws.terminate();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
);

const gw = await startTestGateway(t, {
  REDIS_URL: redis.url,
  DATABASE_URL: pg.url,
  GATEWAY_REDIS_PREFIX: uniquePrefix(),
  GATEWAY_UPSTREAM: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
  GATEWAY_WEBSOCKET_REVALIDATE_INTERVAL: '200ms',
});

t.test('an app that stops answering pings is cut and the client is told', async (t) => {
  const cookie = await login(gw, 'alice', 'alice-ws-liveness');
  const socket = await openSocket(wsUrl(gw.url, '/feed'), { headers: { ...withSession(gw, cookie), origin: gw.url } });
  t.same(await socket.closed(10_000), { code: 1011, reason: 'upstream connection lost' });
  const metrics = (await send(`${gw.adminUrl}/metrics`)).body;
  t.match(metrics, /gateway_websocket_closes_total\{reason="unresponsive"\} 1/);
});
