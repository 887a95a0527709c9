// The client's WebSocket handshake as the gateway checks it, and the headers it sends upstream,
// as tables of cases (RFC 6455 section 4.2.1).
import t from 'tap';
import type { IncomingHttpHeaders } from 'node:http';
import { checkHandshake, endToEndHeaders, hasBody, isWebSocketUpgrade, parseProtocols } from '../../src/proxy/websocket-handshake.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const valid: IncomingHttpHeaders = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': KEY, 'sec-websocket-version': '13' };

t.test('checkHandshake: what is refused, with which status', async (t) => {
  const cases: Array<[string, string, IncomingHttpHeaders, number | 'ok']> = [
    ['a browser handshake', 'GET', valid, 'ok'],
    ['Upgrade in another case', 'GET', { ...valid, upgrade: 'WebSocket' }, 'ok'],
    ['POST', 'POST', valid, 405],
    ['another protocol', 'GET', { ...valid, upgrade: 'h2c' }, 400],
    ['no key', 'GET', { ...valid, 'sec-websocket-key': undefined }, 400],
    ['a key that is not base64 of 16 bytes', 'GET', { ...valid, 'sec-websocket-key': 'c2hvcnQ=' }, 400],
    ['garbage key', 'GET', { ...valid, 'sec-websocket-key': '!!!!!!!!!!!!!!!!!!!!!!==' }, 400],
    ['two keys joined by Node', 'GET', { ...valid, 'sec-websocket-key': `${KEY}, ${KEY}` }, 400],
    ['no version', 'GET', { ...valid, 'sec-websocket-version': undefined }, 426],
    ['version 8 (a 2011 draft)', 'GET', { ...valid, 'sec-websocket-version': '8' }, 426],
    ['version 13 twice', 'GET', { ...valid, 'sec-websocket-version': '13, 13' }, 426],
    ['a bad subprotocol list', 'GET', { ...valid, 'sec-websocket-protocol': 'a,,b' }, 400],
  ];
  for (const [name, method, headers, expected] of cases) {
    const result = checkHandshake(method, headers);
    if (expected === 'ok') t.ok(result.ok, name);
    else t.equal(result.ok ? 'ok' : result.status, expected, name);
  }
});

t.test('parseProtocols: comma-separated tokens, no empty or repeated names', async (t) => {
  const cases: Array<[string, string[] | null]> = [
    ['chat', ['chat']],
    ['chat, superchat', ['chat', 'superchat']],
    ['chat,superchat', ['chat', 'superchat']],
    ['v1.chat.example.com', ['v1.chat.example.com']],
    ['chat,', null],
    [',chat', null],
    ['chat,,v1', null],
    ['chat, chat', null],
    ['chat v1', null],
    ['chat;v1', null],
    ['"chat"', null],
    ['', null],
  ];
  for (const [value, expected] of cases) t.same(parseProtocols(value), expected, JSON.stringify(value));
});

t.test('endToEndHeaders: hop-by-hop, Connection-named and handshake headers stay behind', async (t) => {
  const copy = endToEndHeaders({
    ...valid,
    host: 'app.example.com',
    connection: 'Upgrade, X-Hop',
    'x-hop': 'one hop only',
    'keep-alive': 'timeout=5',
    // The same hop-by-hop list as an HTTP request's (hop-by-hop.ts), Expect and HTTP2-Settings included.
    expect: '100-continue',
    'http2-settings': 'AAMAAABkAAQCAAAAAAIAAAAA',
    te: 'trailers',
    'proxy-connection': 'keep-alive',
    'sec-websocket-extensions': 'permessage-deflate',
    'sec-websocket-protocol': 'chat',
    'content-length': '0',
    origin: 'https://app.example.com',
    cookie: 'a=1',
    authorization: 'Bearer x',
    'user-agent': 'test',
    'x-forwarded-user': 'left for the identity rewriter',
  });
  t.same(copy, {
    origin: 'https://app.example.com',
    cookie: 'a=1',
    authorization: 'Bearer x',
    'user-agent': 'test',
    'x-forwarded-user': 'left for the identity rewriter',
  });
});

t.test('isWebSocketUpgrade and hasBody', async (t) => {
  t.ok(isWebSocketUpgrade({ upgrade: 'websocket' }));
  t.notOk(isWebSocketUpgrade({ upgrade: 'h2c' }));
  t.notOk(isWebSocketUpgrade({}));
  t.notOk(hasBody({}, Buffer.alloc(0)));
  t.notOk(hasBody({ 'content-length': '0' }, Buffer.alloc(0)));
  t.ok(hasBody({ 'content-length': '5' }, Buffer.alloc(0)));
  t.ok(hasBody({ 'transfer-encoding': 'chunked' }, Buffer.alloc(0)));
  t.ok(hasBody({}, Buffer.from('early')));
});
