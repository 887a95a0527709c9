// Hop-by-hop headers (RFC 9110 §7.6.1) and the app's Set-Cookie lines, as tables (SPEC section 4).
import t from 'tap';
import type { IncomingHttpHeaders } from 'node:http';
import { isGatewayCookie } from '../../src/proxy/gateway-cookies.js';
import { hopByHopNames, withoutHopByHop } from '../../src/proxy/hop-by-hop.js';

t.test('withoutHopByHop: a copy without the fixed list and whatever Connection names', async (t) => {
  const cases: Array<[string, IncomingHttpHeaders, IncomingHttpHeaders]> = [
    ['nothing to drop', { accept: '*/*', 'x-app': '1' }, { accept: '*/*', 'x-app': '1' }],
    ['Connection and Keep-Alive', { connection: 'keep-alive', 'keep-alive': 'timeout=5', accept: '*/*' }, { accept: '*/*' }],
    ['names listed in Connection, any case and spacing', { connection: 'close , X-Hop,x-other', 'x-hop': '1', 'x-other': '2', 'x-kept': '3' }, { 'x-kept': '3' }],
    ['Connection as repeated lines', { connection: ['x-a', 'X-B'] as unknown as string, 'x-a': '1', 'x-b': '2', 'x-c': '3' }, { 'x-c': '3' }],
    ['Proxy-Connection', { 'proxy-connection': 'keep-alive', host: 'h' }, { host: 'h' }],
    ['TE and Trailer', { te: 'trailers', trailer: 'x-checksum', 'x-checksum': 'abc' }, { 'x-checksum': 'abc' }],
    ['Transfer-Encoding (the next hop frames the body itself)', { 'transfer-encoding': 'chunked', 'content-type': 'text/plain' }, { 'content-type': 'text/plain' }],
    ['Upgrade: h2c with HTTP2-Settings', { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAAQAAP__' }, {}],
    ['Expect (the gateway answers 100 Continue itself)', { expect: '100-continue', 'content-length': '5' }, { 'content-length': '5' }],
    ['an empty Connection token list', { connection: ' , ', accept: 'x' }, { accept: 'x' }],
  ];
  for (const [label, input, expected] of cases) {
    const headers = { ...input };
    const copy = withoutHopByHop(headers);
    t.strictSame(copy, expected, label);
    t.strictSame(headers, input, `${label}: the original is left as it was`);
    // The request path's rewriter leaves out the same names while copying.
    t.strictSame(Object.keys(input).filter((name) => !hopByHopNames(input).has(name)), Object.keys(expected), `${label}: hopByHopNames`);
  }
});

t.test('isGatewayCookie: the name as a browser reads it (RFC 6265bis §5.7)', async (t) => {
  const names = ['sgw_session', 'sgw_csrf', '__Host-gw'];
  const cases: Array<[string, boolean]> = [
    ['sgw_session=x; Path=/', true],
    ['sgw_session =x', true],
    ['sgw_session\t=x', true],
    [' \tsgw_session=x', true],
    ['sgw_session=', true],
    ['sgw_csrf =x', true],
    ['__Host-gw =x; Secure; Path=/', true],
    ['=sgw_session=x', true],
    [' = sgw_session =x', true],
    ['sgw_session', true],
    ['sgw_session; Path=/', true],
    ['=sgw_session', true],
    ['SGW_SESSION=x', false],
    ['__host-gw=x', false],
    ['sgw_session2=x', false],
    ['app=sgw_session=x', false],
    ['app=1; sgw_session=x', false],
    ['=app=1', false],
    ['', false],
    ['theme', false],
  ];
  for (const [line, expected] of cases) t.equal(isGatewayCookie(line, names), expected, JSON.stringify(line));
});
