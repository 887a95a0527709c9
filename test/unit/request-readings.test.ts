import t from 'tap';
import { requestReadings } from '../../src/access/request-readings.js';

const shape = (method: string | null, url: string, headers: Record<string, string> = {}, reroutingHeadersReachApp = false) => ({ method, url, headers, reroutingHeadersReachApp });

t.test('a request with nothing else to read: the same empty answer every time', async (t) => {
  const plain = requestReadings(shape('GET', '/reports?x=1'));
  t.same(plain, { ok: true, readings: {}, destinationHeader: null });
  t.equal(requestReadings(shape('GET', '/other')), plain, 'one shared object, nothing allocated');
});

t.test('each reading, only when the request has it', async (t) => {
  t.same(requestReadings(shape('MOVE', '/dav/a', { destination: 'http://app/dav/b/../c' })), { ok: true, readings: { destination: '/dav/c' }, destinationHeader: 'http://app/dav/c' });
  t.same(requestReadings(shape('GET', '/?/admin')), { ok: true, readings: { routed: '/admin' }, destinationHeader: null });
  t.same(requestReadings(shape('POST', '/orders/1?_method=DELETE')), { ok: true, readings: { methods: ['DELETE'] }, destinationHeader: null });
  t.same(requestReadings(shape('PROPFIND', '/dav/')), { ok: true, readings: { wholeTree: true }, destinationHeader: null });
  const trusted = shape('POST', '/public/x', { 'x-original-url': '/admin', 'x-http-method-override': 'DELETE' }, true);
  t.same(requestReadings(trusted), { ok: true, readings: { methods: ['DELETE'], rewritten: ['/admin'] }, destinationHeader: null });
  t.same(requestReadings({ ...trusted, reroutingHeadersReachApp: false }), { ok: true, readings: {}, destinationHeader: null }, 'not when those headers never reach the app');
});

t.test('what cannot be read as one path is refused, saying which', async (t) => {
  t.match(requestReadings(shape('COPY', '/dav/a', { destination: 'ftp://x/a' })), { ok: false, kind: 'destination' });
  t.match(requestReadings(shape('GET', '/?/a%2fb')), { ok: false, kind: 'path', reason: /^the path in the query: / });
  t.match(requestReadings(shape('GET', '/x', { 'x-rewrite-url': '/../a' }, true)), { ok: false, kind: 'path', reason: /^a URL the app would route by: / });
});

t.test('a Destination without the base path a trusted proxy names (X-Script-Name, which Radicale cuts off it) is written to too', async (t) => {
  const move = (headers: Record<string, string>, trusted = true) => requestReadings(shape('MOVE', '/carol/cal/a.ics', { destination: 'http://app/x/team/hr/a.ics', ...headers }, trusted));
  t.same(move({ 'x-script-name': '/x' }), { ok: true, readings: { destination: '/x/team/hr/a.ics', named: ['/team/hr/a.ics'] }, destinationHeader: 'http://app/x/team/hr/a.ics' });
  t.same(move({ 'x-script-name': '/x' }, false), { ok: true, readings: { destination: '/x/team/hr/a.ics' }, destinationHeader: 'http://app/x/team/hr/a.ics' }, 'from anyone else the header is removed: nothing to cut');
  t.same(move({ 'x-script-name': '/other' }), { ok: true, readings: { destination: '/x/team/hr/a.ics' }, destinationHeader: 'http://app/x/team/hr/a.ics' }, 'a Destination outside the base');
  t.same(move({ 'x-script-name': '/%78' }), { ok: false, kind: 'destination', reason: 'X-Script-Name is not one plain path' });
});
