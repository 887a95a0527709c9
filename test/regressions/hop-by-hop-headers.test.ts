// Attack: hop-by-hop headers (RFC 9110 §7.6.1) describe one connection. Forwarded, they broke
// requests (`Keep-Alive`, `Upgrade: h2c`, `TE`, `Proxy-Connection` answered 502 and counted as the
// app's failure: anonymous traffic fired the Upstream5xx alert), reached the app as if the client
// had sent them to it, and the app's own `Connection: keep-alive` / `Keep-Alive` reached the client:
// a client's `Connection: close` was ignored and its socket held for 72 s.
// Defence: src/proxy/hop-by-hop.ts drops them, and every header `Connection` names, in both
// directions (plugin.ts rewriteRequestHeaders / rewriteHeaders).
import t from 'tap';
import { connect } from 'node:net';
import { login } from '../helpers/gateway.js';
import { scrapeMetric } from '../helpers/metrics.js';
import type { TestGateway } from '../helpers/gateway.js';
import { testBed } from './setup.js';

/** What the app sends back on /app-hop: its own connection's headers, and one it lists in Connection. */
const APP_HOP_HEADERS: Array<[string, string]> = [
  ['Connection', 'keep-alive, X-App-Hop'],
  ['X-App-Hop', 'app-connection-detail'],
  ['Keep-Alive', 'timeout=5, max=1000'],
  ['Proxy-Connection', 'keep-alive'],
  ['TE', 'trailers'],
  ['Trailer', 'X-Checksum'],
  ['Upgrade', 'h2c'],
  ['HTTP2-Settings', 'AAMAAABkAAQAAP__'],
];

const bed = await testBed(t, [{ username: 'hal', password: 'hal-Pw-000001' }], (echo, res) => {
  if (!echo.url.startsWith('/app-hop')) return false;
  res.writeHead(200, [['Content-Type', 'text/plain'], ['X-App-Own', 'kept'], ...APP_HOP_HEADERS].flat());
  res.end('from the app');
  return true;
});
const gw = await bed.gateway({ GATEWAY_PUBLIC_PATHS: '/public' });
const cookie = await login(gw, 'hal', 'hal-Pw-000001');

interface Exchange {
  status: number;
  /** Response header lines as received, lower-cased names. */
  headers: Array<[string, string]>;
  /** Settles when the gateway closes the connection. */
  closed: Promise<void>;
}

/** One request written byte for byte on a fresh connection; resolves once the whole response is in. */
function exchange(gateway: TestGateway, lines: string[], body = ''): Promise<Exchange> {
  const { port } = new URL(gateway.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    const closed = new Promise<void>((done) => socket.on('end', () => done()));
    let text = '';
    socket.on('error', reject);
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      if (split === -1) return;
      const head = text.slice(0, split).split('\r\n');
      const headers = head.slice(1).map((line): [string, string] => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]);
      const rest = text.slice(split + 4);
      const length = headers.find(([name]) => name === 'content-length')?.[1];
      const complete = length !== undefined ? rest.length >= Number(length) : rest.endsWith('0\r\n\r\n');
      if (!complete) return;
      socket.removeAllListeners('data');
      resolve({ status: Number(head[0]?.split(' ')[1]), headers, closed });
    });
    socket.on('close', () => socket.destroy());
    socket.write([...lines, `Host: ${new URL(gateway.url).host}`, '', ''].join('\r\n') + body);
  });
}

const session = `Cookie: sgw_session=${encodeURIComponent(cookie)}`;
const lastReceived = () => bed.upstream.received.at(-1);

/** [what the client adds, header names the app must not receive]; each request also says `close`. */
const CLIENT_CASES: Array<[string, string[], string[]]> = [
  ['Connection names a header', ['Connection: close, X-Client-Hop', 'X-Client-Hop: client-connection-detail'], ['x-client-hop']],
  ['Keep-Alive', ['Connection: close', 'Keep-Alive: timeout=5, max=100'], ['keep-alive']],
  ['Proxy-Connection', ['Connection: close', 'Proxy-Connection: keep-alive'], ['proxy-connection']],
  ['TE', ['Connection: close, TE', 'TE: trailers, deflate'], ['te']],
  ['TE without Connection listing it', ['Connection: close', 'TE: gzip'], ['te']],
  ['Trailer', ['Connection: close', 'Trailer: X-Checksum'], ['trailer']],
  ['Upgrade: h2c (not a WebSocket handshake)', ['Connection: Upgrade, HTTP2-Settings, close', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAAQAAP__'], ['upgrade', 'http2-settings']],
  ['Upgrade to something else', ['Connection: close', 'Upgrade: TLS/1.2'], ['upgrade']],
];

t.test('client → app: each hop-by-hop header is dropped, and the request still works', async (t) => {
  for (const path of ['/public/hop', '/private/hop']) {
    for (const [label, lines, dropped] of CLIENT_CASES) {
      const before = bed.upstream.received.length;
      const res = await exchange(gw, [`GET ${path}?case=${encodeURIComponent(label)} HTTP/1.1`, 'Accept: application/json', session, ...lines]);
      t.equal(res.status, 200, `${path}, ${label}: answered by the app, not 502`);
      t.equal(bed.upstream.received.length, before + 1, `${path}, ${label}: the app got the request`);
      const received = lastReceived();
      for (const name of dropped) t.equal(received?.headers[name], undefined, `${path}, ${label}: ${name} not forwarded`);
      // The gateway's own connection to the app may carry a Connection header; never the client's options.
      t.notMatch(received?.headers.connection ?? '', /x-client-hop|upgrade|\bte\b|http2/i, `${path}, ${label}: the client's Connection options are not forwarded`);
    }
  }
});

t.test('client → app: a chunked body arrives whole, re-framed by the gateway', async (t) => {
  const res = await exchange(gw, ['POST /public/chunked HTTP/1.1', 'Connection: close', 'Transfer-Encoding: chunked', 'Content-Type: text/plain'], '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
  t.equal(res.status, 200);
  t.equal(lastReceived()?.body, 'hello world');
});

t.test('app → client: the app\'s connection headers never reach the client', async (t) => {
  for (const path of ['/app-hop/public', '/app-hop/private']) {
    const res = await exchange(gw, [`GET ${path} HTTP/1.1`, 'Accept: application/json', session, 'Connection: close']);
    t.equal(res.status, 200, path);
    const names = res.headers.map(([name]) => name);
    t.ok(names.includes('x-app-own'), `${path}: the app's own headers pass`);
    for (const name of ['x-app-hop', 'proxy-connection', 'te', 'trailer', 'upgrade', 'http2-settings']) t.notOk(names.includes(name), `${path}: ${name} dropped`);
    t.notOk(res.headers.some(([name, value]) => name === 'keep-alive' && value.includes('max=1000')), `${path}: not the app's Keep-Alive`);
    t.same(res.headers.filter(([name]) => name === 'connection'), [['connection', 'close']], `${path}: the client's Connection: close is honoured, not the app's keep-alive`);
    // Otherwise the socket would stay open for the keep-alive timeout (72 s).
    if (res.headers.some(([name, value]) => name === 'connection' && value === 'close')) await res.closed;
  }
});

t.test('none of it counted as an upstream failure', async (t) => {
  t.equal(await scrapeMetric(gw.adminUrl, 'gateway_upstream_request_duration_seconds_count', { status_class: '5xx' }), 0);
});
