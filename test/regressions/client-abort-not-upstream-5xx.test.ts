// Attack: anyone can open a request and drop the connection half-way (or a mobile client simply
// loses signal). The broken body stream failed the call to the app, which the gateway counted as an
// upstream 502 and logged as "upstream failed": a few anonymous clients fired the Upstream5xx alert
// (deploy/prometheus/alerts.yml) and paged someone for an app that was fine.
// Defence: plugin.ts's onError recognises a client that went away and counts nothing against the
// app; app.ts's onRequestAbort hook counts the request as 499 (client closed request, a 4xx).
import t from 'tap';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { login, type TestGateway } from '../helpers/gateway.js';
import { scrapeMetric } from '../helpers/metrics.js';
import { sleep } from '../helpers/services.js';
import { testBed } from './setup.js';

// The app: tells the test when a request has reached it, then never answers (the client leaves first).
const arrived: IncomingMessage[] = [];
const app = createServer((req) => void arrived.push(req));
app.listen(0, '127.0.0.1');
await once(app, 'listening');
t.teardown(() => new Promise<void>((resolve) => { app.closeAllConnections(); app.close(() => resolve()); }));

const bed = await testBed(t, [{ username: 'abby', password: 'abby-Pw-000001' }]);
const gw = await bed.gateway({ GATEWAY_UPSTREAM: `http://127.0.0.1:${(app.address() as AddressInfo).port}`, GATEWAY_PUBLIC_PATHS: '/public' });
const cookie = await login(gw, 'abby', 'abby-Pw-000001');

/** Waits (bounded) until the app has seen `count` requests in all. */
async function appReceived(count: number): Promise<void> {
  for (let i = 0; i < 200 && arrived.length < count; i++) await sleep(25);
  if (arrived.length < count) throw new Error('test setup: the request never reached the app');
}

/** Waits (bounded) until the gateway has counted `count` requests of `statusClass`. */
async function counted(gateway: TestGateway, statusClass: string, count: number): Promise<number> {
  let seen = 0;
  for (let i = 0; i < 200; i++) {
    seen = await scrapeMetric(gateway.adminUrl, 'gateway_request_duration_seconds_count', { status_class: statusClass });
    if (seen >= count) break;
    await sleep(25);
  }
  return seen;
}

/** Sends a request head (and part of a body), waits until the app has it, then drops the connection. */
async function abandon(lines: string[], partialBody: string): Promise<void> {
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1');
  await once(socket, 'connect');
  socket.write([...lines, `Host: ${new URL(gw.url).host}`, '', ''].join('\r\n') + partialBody);
  await appReceived(arrived.length + 1);
  socket.destroy();
}

const upstream5xx = () => scrapeMetric(gw.adminUrl, 'gateway_upstream_request_duration_seconds_count', { status_class: '5xx' });

t.test('anonymous uploads dropped half-way on a public path: client errors, never the app\'s 5xx', async (t) => {
  for (let i = 0; i < 5; i++) await abandon(['POST /public/upload HTTP/1.1', 'Content-Type: application/octet-stream', 'Content-Length: 1000000'], 'x'.repeat(1000));
  t.equal(await counted(gw, '4xx', 5), 5, 'each counted once, as a client error (499)');
  t.equal(await upstream5xx(), 0, 'nothing counted against the app: the Upstream5xx alert stays quiet');
  t.equal(await scrapeMetric(gw.adminUrl, 'gateway_request_duration_seconds_count', { status_class: '5xx' }), 0, 'no 5xx request either');
  t.notOk(gw.logs.some((line) => line.includes('upstream failed')), 'no "upstream failed" warning');
  const lines = gw.logs.map((line) => JSON.parse(line) as { msg?: string; status?: number; path?: string }).filter((l) => l.msg === 'request' && l.path === '/public/upload');
  t.same(lines.map((l) => l.status), [499, 499, 499, 499, 499], 'the access log says the client closed the request');
});

t.test('a signed-in upload dropped half-way, and a GET abandoned while the app thinks', async (t) => {
  const before = await counted(gw, '4xx', 0);
  await abandon(['PUT /files/report.pdf HTTP/1.1', `Cookie: sgw_session=${encodeURIComponent(cookie)}`, 'Accept: application/json', 'Content-Length: 50000'], 'y'.repeat(10));
  await abandon(['GET /slow-report HTTP/1.1', `Cookie: sgw_session=${encodeURIComponent(cookie)}`, 'Accept: application/json'], '');
  t.equal(await counted(gw, '4xx', before + 2), before + 2, 'both counted as client errors');
  t.equal(await upstream5xx(), 0, 'none against the app');
});
