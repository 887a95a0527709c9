// Attack: 150 anonymous uploads to a public path, each trickling a few bytes a second. Each body
// streamed straight into one of the gateway's 128 connections to the app, so every signed-in user's
// request queued behind them until they stopped; and with no request timeout, a body trickled into
// /_auth/login held its connection (and the login's slot) forever.
// Defence: no cap on connections to the app (plugin.ts UPSTREAM_CONNECTIONS: a slow body holds
// only its own), and GATEWAY_REQUEST_TIMEOUT (app.ts createGatewayServer): the whole request must
// arrive in time, else 408 and the connection closes.
import t from 'tap';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { login, withSession, type TestGateway } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { scrapeMetric } from '../helpers/metrics.js';
import { sleep } from '../helpers/services.js';
import { testBed } from './setup.js';

const SLOW_UPLOADS = 150;
const SLOW_ADDRESS = '127.0.0.3';
const SLOW_BODY_BYTES = 120;

// The app: reads every body to the end and answers; counts the slow uploads that reached it.
const reachedApp: IncomingMessage[] = [];
const app = createServer((req, res) => {
  if (req.url?.startsWith('/public/upload')) reachedApp.push(req);
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ user: req.headers['x-forwarded-user'] ?? null, url: req.url }));
  });
});
app.listen(0, '127.0.0.1');
await once(app, 'listening');
t.teardown(() => new Promise<void>((resolve) => { app.closeAllConnections(); app.close(() => resolve()); }));
const appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;

const bed = await testBed(t, [{ username: 'sam', password: 'sam-Pw-0000001' }]);

interface SlowClient {
  socket: Socket;
  /** The status line of the gateway's answer, once it arrives. */
  statusLine: Promise<string>;
  /** The status line (or 'closed') once the gateway has closed the connection. */
  closed: Promise<string>;
}

/** Opens a request whose body (if any) the caller trickles; `from` binds the client's address. */
async function openSlow(gateway: TestGateway, head: string[], from = SLOW_ADDRESS): Promise<SlowClient> {
  const socket = connect({ host: '127.0.0.1', port: Number(new URL(gateway.url).port), localAddress: from });
  await once(socket, 'connect');
  let received = '';
  const firstLine = () => (received.includes('\r\n') ? received.slice(0, received.indexOf('\r\n')) : null);
  const statusLine = new Promise<string>((resolve) => socket.on('data', (c: Buffer) => {
    received += c.toString('latin1');
    const line = firstLine();
    if (line !== null) resolve(line);
  }));
  socket.on('error', () => undefined);
  const closed = new Promise<string>((resolve) => socket.on('close', () => resolve(firstLine() ?? 'closed')));
  socket.write(head.join('\r\n'));
  return { socket, statusLine, closed };
}

t.test('150 trickling uploads from one address: a signed-in user elsewhere is answered while they are still open', async (t) => {
  const gw = await bed.gateway({ GATEWAY_UPSTREAM: appUrl, GATEWAY_PUBLIC_PATHS: '/public' });
  const cookie = await login(gw, 'sam', 'sam-Pw-0000001');
  const host = new URL(gw.url).host;
  const slow: SlowClient[] = [];
  for (let i = 0; i < SLOW_UPLOADS; i++) {
    slow.push(await openSlow(gw, [`POST /public/upload/${i} HTTP/1.1`, `Host: ${host}`, 'Content-Type: application/octet-stream', `Content-Length: ${SLOW_BODY_BYTES}`, '', 'ab']));
  }
  // A few bytes a second from each, until the user's requests are done (at most 20 s, then they end).
  let sent = 2;
  let userDone = false;
  let slowBodiesSent = false;
  const trickle = (async () => {
    for (let second = 0; second < 20 && !userDone; second++) {
      await sleep(1_000);
      for (const s of slow) s.socket.write('xy');
      sent += 2;
    }
    slowBodiesSent = true;
    for (const s of slow) s.socket.write('z'.repeat(SLOW_BODY_BYTES - sent));
  })();
  // Let them take whatever the gateway gives them before the user comes (bounded wait).
  for (let i = 0; i < 100 && reachedApp.length < SLOW_UPLOADS; i++) await sleep(50);
  t.equal(reachedApp.length, SLOW_UPLOADS, 'every slow upload was handed to the app (each on its own connection)');

  const user = withSession(gw, cookie, { accept: 'application/json' });
  const answers = await Promise.all([
    ...Array.from({ length: 5 }, (_, i) => send(`${gw.url}/account/${i}`, { headers: user })),
    send(`${gw.url}/account/save`, { method: 'POST', headers: { ...user, 'content-type': 'application/json' }, body: '{"x":1}' }),
  ]);
  userDone = true;
  const answeredWhileSlowOpen = !slowBodiesSent;
  t.same(answers.map((a) => a.status), [200, 200, 200, 200, 200, 200], 'the signed-in user is answered');
  t.same(answers.map((a) => a.json<{ user: string }>().user), ['sam', 'sam', 'sam', 'sam', 'sam', 'sam']);
  t.ok(answeredWhileSlowOpen, 'while every slow upload is still trickling');
  t.equal(reachedApp.filter((req) => req.complete).length, 0, 'and none of their bodies has finished');

  await trickle;
  const statuses = await Promise.all(slow.map((s) => s.statusLine));
  t.equal(statuses.filter((s) => s === 'HTTP/1.1 200 OK').length, SLOW_UPLOADS, 'the slow uploads themselves complete normally');
  for (const s of slow) s.socket.destroy();
  await gw.stop();
});

t.test('GATEWAY_REQUEST_TIMEOUT: a body trickled into /_auth/login is cut with 408', async (t) => {
  const gw = await bed.gateway({ GATEWAY_UPSTREAM: appUrl, GATEWAY_PUBLIC_PATHS: '/public', GATEWAY_REQUEST_TIMEOUT: '1s' });
  const host = new URL(gw.url).host;
  const body = JSON.stringify({ username: 'sam', password: 'sam-Pw-0000001' });
  const cases: Array<[string, string[]]> = [
    ['a trickling login body', ['POST /_auth/login HTTP/1.1', `Host: ${host}`, 'Content-Type: application/json', `Content-Length: ${body.length}`, '', body.slice(0, 3)]],
    ['a trickling upload to the app', ['POST /public/upload/slow HTTP/1.1', `Host: ${host}`, `Content-Length: ${SLOW_BODY_BYTES}`, '', 'ab']],
    ['headers that never end', ['GET /public/page HTTP/1.1', `Host: ${host}`, 'X-Slow: 1']],
  ];
  for (const [label, head] of cases) {
    const client = await openSlow(gw, head, '127.0.0.1');
    // Keep trickling until the gateway gives up on the request (bounded by the loop).
    for (let i = 0; i < 60 && !client.socket.destroyed && client.socket.readyState === 'open'; i++) {
      await sleep(250);
      if (client.socket.writable) client.socket.write(label === 'headers that never end' ? 'X-More: 1\r\n' : 'x');
    }
    client.socket.destroy();
    t.equal(await client.closed, 'HTTP/1.1 408 Request Timeout', `${label}: 408, and the connection is closed`);
  }
  t.equal(await scrapeMetric(gw.adminUrl, 'gateway_request_duration_seconds_count', { status_class: '4xx' }), cases.length, 'each counted as a client error');
  t.equal(await scrapeMetric(gw.adminUrl, 'gateway_logins_total'), 0, 'the cut login never reached the password check');
  const logged = gw.logs.map((line) => JSON.parse(line) as { msg?: string; status?: number }).filter((l) => l.msg === 'request' && l.status === 408);
  t.equal(logged.length, cases.length, 'and each has its access-log line');

  // The timeout bounds receiving the request, not the app's answer: a long poll is not cut.
  const cookie = await login(gw, 'sam', 'sam-Pw-0000001');
  const slowApp = createServer((req, res) => void setTimeout(() => res.end('late but fine'), 2_500));
  slowApp.listen(0, '127.0.0.1');
  await once(slowApp, 'listening');
  t.teardown(() => new Promise<void>((resolve) => { slowApp.closeAllConnections(); slowApp.close(() => resolve()); }));
  const polling = await bed.gateway({ GATEWAY_UPSTREAM: `http://127.0.0.1:${(slowApp.address() as AddressInfo).port}`, GATEWAY_REQUEST_TIMEOUT: '1s' });
  const sessionCookie = await login(polling, 'sam', 'sam-Pw-0000001');
  const res = await send(`${polling.url}/poll`, { headers: withSession(polling, sessionCookie, { accept: 'application/json' }) });
  t.equal(res.status, 200, 'an answer that takes longer than the request timeout still arrives');
  t.equal(res.body, 'late but fine');
  t.ok(cookie, 'sign-in itself works within the timeout');
});
