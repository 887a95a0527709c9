// Attack: a rule keeps one event of a team calendar (`/team/cal/salaries.ics`) to `hr`, and every
// signed-in user may read the rest of the calendar. The CalDAV server (here a real Radicale, which
// trusts the user the gateway names and leaves who sees what to the gateway) answers a REPORT with
// the content of events other than its own path:
// - a `calendar-query` or `sync-collection` REPORT on the collection returns every member, whatever
//   the Depth header says (Depth 0 included);
// - sent to another event (`/team/cal/lunch.ics`) that the user may read, a `sync-collection` REPORT
//   returns every event of its calendar, and a `calendar-multiget` every event its body names by
//   `href` (SabreDAV serves an href anywhere under its base).
// Defence: src/access/destination.ts reads every REPORT (and SEARCH) as reading inside its path, and
// src/access/rules.ts a REPORT as reading inside the calendar of its path, so the rules inside must
// allow it too, through the proxy and /_auth/verify alike; and the proxy reads the hrefs a REPORT's
// body names as it streams (src/access/body-paths.ts, src/proxy/judged-body.ts): the rules of each
// must allow it too, or the request to the app is aborted before its body is complete and the client
// gets the refusal. Where a server's parser would read the body otherwise, it is refused.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import { callVerify } from '../helpers/forward-auth.js';
import { login, withSession } from '../helpers/gateway.js';
import { startCalDavServer } from '../helpers/caldav.js';
import { testBed } from './setup.js';

const cal = await startCalDavServer(t);
await cal.calendar('/team/cal/', 'hazel');
await cal.event('/team/cal/salaries.ics', 'hazel', 'Salaries review');
await cal.event('/team/cal/lunch.ics', 'hazel', 'Team lunch');
await cal.calendar('/carol/cal/', 'carol');
await cal.event('/carol/cal/dentist.ics', 'carol', 'Dentist');

const bed = await testBed(t, [
  { username: 'carol', password: 'carol-Pw-0018', groups: ['staff'] },
  { username: 'hazel', password: 'hazel-Pw-0018', groups: ['hr'] },
]);
const dir = mkdtempSync(join(tmpdir(), 'sgw-caldav-rules-'));
writeFileSync(join(dir, 'rules.yaml'), 'rules:\n  - { path: /team/cal/salaries.ics, policy: { groups: [hr] } }\n');
const gw = await bed.gateway({ GATEWAY_UPSTREAM: cal.url, GATEWAY_ACCESS_RULES: join(dir, 'rules.yaml'), GATEWAY_HEADER_USER: 'X-Remote-User', GATEWAY_TRUSTED_PROXIES: '127.0.0.1' });
const carol = await login(gw, 'carol', 'carol-Pw-0018');
const hazel = await login(gw, 'hazel', 'hazel-Pw-0018');

const NS = 'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"';
const QUERY = `<?xml version="1.0" encoding="utf-8"?><C:calendar-query ${NS}><D:prop><D:getetag/><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>`;
const SYNC = `<?xml version="1.0" encoding="utf-8"?><D:sync-collection ${NS}><D:sync-token/><D:sync-level>1</D:sync-level><D:prop><C:calendar-data/></D:prop></D:sync-collection>`;
const multiget = (...hrefs: string[]) => `<?xml version="1.0" encoding="utf-8"?>\n<C:calendar-multiget ${NS}>\n  <D:prop><D:getetag/><C:calendar-data/></D:prop>\n${hrefs.map((href) => `  <D:href>${href}</D:href>\n`).join('')}</C:calendar-multiget>\n`;

const viaGateway = async (cookie: string, method: string, path: string, body: string | Buffer, headers: Record<string, string> = {}) => {
  const res = await fetch(`${gw.url}${path}`, { method, headers: withSession(gw, cookie, { accept: 'application/xml', 'content-type': 'application/xml; charset=utf-8', ...headers }), body: typeof body === 'string' ? body : new Uint8Array(body) });
  return { status: res.status, body: await res.text() };
};

t.test('Radicale itself answers these REPORTs with the event the rule keeps to hr (what the path alone does not show)', async (t) => {
  for (const depth of ['0', '1']) t.match((await cal.send('REPORT', '/team/cal/', 'carol', QUERY, { depth })).body, /Salaries review/, `calendar-query, Depth ${depth}`);
  t.match((await cal.send('REPORT', '/team/cal/', 'carol', SYNC, { depth: '0' })).body, /Salaries review/, 'sync-collection');
  t.match((await cal.send('REPORT', '/team/cal/lunch.ics', 'carol', SYNC, { depth: '0' })).body, /Salaries review/, 'sync-collection sent to another event');
  t.match((await cal.send('REPORT', '/team/cal/lunch.ics', 'carol', multiget('/team/cal/salaries.ics'))).body, /Salaries review/, 'a multiget sent to another event');
  t.match((await cal.send('REPORT', '/team/cal/lunch.ics', 'carol', multiget('http://elsewhere.example/team/cal/%73alaries.ics'))).body, /Salaries review/, 'an absolute, encoded href');
  t.match((await cal.send('REPORT', '/team/cal/lunch.ics', 'carol', multiget('team/cal/salaries.ics'))).body, /Salaries review/, 'a relative href, read from the root');
});

t.test('through the proxy: the rule keeps the event from carol on its own path', async (t) => {
  const res = await fetch(`${gw.url}/team/cal/salaries.ics`, { headers: withSession(gw, carol, { accept: 'application/json' }) });
  t.equal(res.status, 403);
});

t.test('Radicale reads an event named with a slash added as the event, and a sync-collection there answers its calendar', async (t) => {
  t.match((await cal.send('REPORT', '/team/cal/lunch.ics/', 'carol', SYNC, { depth: '0' })).body, /Salaries review/);
});

t.test('a REPORT on the calendar, or on an event in it, reads the calendar whatever its Depth: 403 for carol, the event for hr', async (t) => {
  for (const path of ['/team/cal/', '/team/cal/lunch.ics', '/team/cal/lunch.ics/']) {
    for (const [name, body] of [['calendar-query', QUERY], ['sync-collection', SYNC], ['calendar-multiget', multiget('/team/cal/lunch.ics')]] as const) {
      for (const depth of ['0', '1', undefined]) {
        const res = await viaGateway(carol, 'REPORT', path, body, depth === undefined ? {} : { depth });
        t.equal(res.status, 403, `${path}, ${name}, Depth ${depth ?? '(none)'}: 403`);
        t.notMatch(res.body, /Salaries/);
      }
    }
  }
  const hr = await viaGateway(hazel, 'REPORT', '/team/cal/', QUERY, { depth: '1' });
  t.equal(hr.status, 207);
  t.match(hr.body, /Salaries review/);
  t.match(hr.body, /Team lunch/);
});

t.test('a multiget naming the event, sent anywhere else: 403 in every spelling of the href', async (t) => {
  const hrefs = [
    '/team/cal/salaries.ics',
    'http://elsewhere.example/team/cal/salaries.ics',
    'https://127.0.0.1/team/cal/%73alaries.ics',
    '/team/cal/./salaries.ics',
    '/team/cal/x/../salaries.ics',
    '/team//cal/salaries.ics',
    '/team/cal/%73alaries.ics',
    '/team/cal/&#115;alaries.ics',
    '<![CDATA[/team/cal/salaries.ics]]>',
    '  /team/cal/salaries.ics\n  ',
    '/TEAM/cal/salaries.ics',
    'team/cal/salaries.ics',
    '../../team/cal/salaries.ics',
  ];
  for (const href of hrefs) {
    const res = await viaGateway(carol, 'REPORT', '/carol/cal/dentist.ics', multiget('/carol/cal/dentist.ics', href));
    t.equal(res.status, 403, `${JSON.stringify(href)}: 403`);
    t.notMatch(res.body, /Salaries/);
  }
  // Any prefix, no prefix, any case of the element's name: every `href` counts.
  for (const body of [
    `<multiget xmlns="urn:ietf:params:xml:ns:caldav"><href xmlns="DAV:">/team/cal/salaries.ics</href></multiget>`,
    `<C:calendar-multiget ${NS} xmlns:X="DAV:"><X:href>/team/cal/salaries.ics</X:href></C:calendar-multiget>`,
    `<C:calendar-multiget ${NS}><D:HREF>/team/cal/salaries.ics</D:HREF></C:calendar-multiget>`,
  ]) t.equal((await viaGateway(carol, 'REPORT', '/carol/cal/', body)).status, 403, body);
});

t.test('where the server reads the body otherwise than a plain parse would: refused, or read its way', async (t) => {
  const lunch = '<D:href>/team/cal/lunch.ics</D:href>';
  const body = (inner: string) => `<C:calendar-multiget ${NS}><D:prop><C:calendar-data/></D:prop>${lunch}${inner}</C:calendar-multiget>`;
  const utf7 = body('+ADw-D:href+AD4-/team/cal/salaries.ics+ADw-/D:href+AD4-');
  const cases: Array<[string, string, Record<string, string>, number]> = [
    // ElementTree's text of an href stops at a child element: Radicale reads /team/cal/salaries.ics.
    ['an element inside the href', body('<D:href>/team/cal/salaries.ics<D:x/>/../lunch.ics</D:href>'), {}, 400],
    // Python's URL parser deletes tabs and newlines.
    ['a newline inside the href', body('<D:href>/team/cal/sal&#10;aries.ics</D:href>'), {}, 400],
    // Radicale decodes the body by the charset after the first `charset=` anywhere in the Content-Type: in UTF-7, `+ADw-` is `<`.
    ['a UTF-7 body', utf7, { 'content-type': 'application/xml; charset=utf-7' }, 400],
    ['a UTF-7 body, its charset in another parameter', utf7, { 'content-type': 'application/xml; x=charset=utf-7' }, 400],
    // Radicale cuts its base path (X-Script-Name, here from a trusted proxy) off every href.
    ['an href under the base path a trusted proxy names', body('<D:href>/x/team/cal/salaries.ics</D:href>'), { 'x-script-name': '/x' }, 403],
    ['a base path written with an escape', body('<D:href>/%2561/team/cal/salaries.ics</D:href>'), { 'x-script-name': '/%61' }, 400],
  ];
  for (const [name, text, headers, status] of cases) {
    const direct = await cal.send('REPORT', '/team/cal/lunch.ics', 'carol', text, { 'content-type': 'application/xml', ...headers });
    t.match(direct.body, /Salaries review/, `${name}: Radicale itself returns the event (to a REPORT in its calendar)`);
    const res = await viaGateway(carol, 'REPORT', '/carol/cal/', text, headers);
    t.equal(res.status, status, `${name}: ${status}`);
    t.notMatch(res.body, /Salaries/, name);
  }
});

t.test('a MOVE whose Destination is under the base path a trusted proxy names: judged without it, as Radicale reads it', async (t) => {
  await cal.event('/carol/cal/plant.ics', 'carol', 'Water the plant');
  const direct = await cal.send('MOVE', '/carol/cal/plant.ics', 'carol', undefined, { destination: `${cal.url}/x/carol/cal/plant2.ics`, 'x-script-name': '/x' });
  t.equal(direct.status, 201, 'Radicale cuts its base path off the Destination');
  t.match((await cal.send('GET', '/carol/cal/plant2.ics', 'carol')).body, /Water the plant/);
  const res = await fetch(`${gw.url}/carol/cal/plant2.ics`, { method: 'MOVE', headers: withSession(gw, carol, { accept: 'application/json', destination: 'http://127.0.0.1/x/team/cal/salaries.ics', overwrite: 'T', 'x-script-name': '/x' }) });
  t.equal(res.status, 403, 'onto the event the rule keeps to hr: 403');
  t.match((await cal.send('GET', '/team/cal/salaries.ics', 'hazel')).body, /Salaries review/, 'the event is untouched');
});

t.test('deeply nested or wide XML is refused at once (the parser would keep every open element)', async (t) => {
  const deep = await viaGateway(carol, 'REPORT', '/carol/cal/', '<a>'.repeat(100_000), { accept: 'application/json' });
  t.equal(deep.status, 400);
  t.match(deep.body, /nested deeper than 64/);
  const wide = await viaGateway(carol, 'REPORT', '/carol/cal/', `<a ${Array.from({ length: 10_000 }, (_, i) => `x${i}=""`).join(' ')}/>`, { accept: 'application/json' });
  t.equal(wide.status, 400);
  t.match(wide.body, /more than 64 attributes/);
});

t.test('a body refused before its end closes the connection: nothing waits on it', async (t) => {
  const { port } = new URL(gw.url);
  const socket = connect(Number(port), '127.0.0.1');
  await once(socket, 'connect');
  const junk = 'x'.repeat(200_000);
  const answer = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('close', () => resolve(text));
  });
  socket.on('error', () => undefined);
  socket.write(`REPORT /carol/cal/ HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${withSession(gw, carol).cookie}\r\nContent-Type: application/xml\r\nContent-Length: ${junk.length}\r\n\r\n`);
  socket.write(junk);
  const text = await answer;
  t.match(text, /^HTTP\/1\.1 400 /, 'answered 400');
  t.match(text, /connection: close/i);
});

t.test('however the body is sent: no Content-Type, any Content-Type, chunked', async (t) => {
  const body = multiget('/team/cal/salaries.ics');
  const send = async (name: string, init: RequestInit & { duplex?: 'half' }) => {
    const res = await fetch(`${gw.url}/carol/cal/`, { method: 'REPORT', ...init, headers: withSession(gw, carol, { accept: 'application/xml', ...(init.headers as Record<string, string> | undefined) }) });
    const text = await res.text();
    t.equal(res.status, 403, `${name}: 403`);
    t.notMatch(text, /Salaries/, name);
  };
  await send('no Content-Type', { body: new TextEncoder().encode(body) });
  await send('text/plain', { body, headers: { 'content-type': 'text/plain' } });
  await send('chunked', { body: new Blob([body]).stream(), duplex: 'half', headers: { 'content-type': 'text/xml' } });
  const allowed = await fetch(`${gw.url}/carol/cal/`, { method: 'REPORT', body: new Blob([multiget('/carol/cal/dentist.ics')]).stream(), duplex: 'half', headers: withSession(gw, carol) } as RequestInit);
  t.equal(allowed.status, 207, 'allowed, chunked without Content-Type: the server gets the whole body');
  t.match(await allowed.text(), /Dentist/);
});

t.test('what carol may read still works: her own calendar whole, events elsewhere by href; hr reads the team calendar', async (t) => {
  const own = await viaGateway(carol, 'REPORT', '/carol/cal/', QUERY, { depth: '1' });
  t.equal(own.status, 207, 'a calendar-query of her calendar');
  t.match(own.body, /Dentist/);
  const multi = await viaGateway(carol, 'REPORT', '/carol/cal/', multiget('/carol/cal/dentist.ics', 'http://elsewhere.example/team/cal/lunch.ics', 'dentist.ics'));
  t.equal(multi.status, 207, 'a multiget naming events she may read');
  t.match(multi.body, /Dentist/);
  t.equal((await viaGateway(carol, 'PROPFIND', '/team/cal/', `<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>`, { depth: '1' })).status, 207, 'a Depth-1 PROPFIND of names and etags');
  const hr = await viaGateway(hazel, 'REPORT', '/team/cal/lunch.ics', multiget('/team/cal/salaries.ics'));
  t.equal(hr.status, 207, 'hr may multiget the event');
  t.match(hr.body, /Salaries review/);
});

t.test('a Depth-1 PROPFIND asking for the members\' content (SabreDAV answers it) reads them: 403 for carol', async (t) => {
  const body = `<D:propfind ${NS}><D:prop><D:getetag/><C:calendar-data/></D:prop></D:propfind>`;
  t.equal((await viaGateway(carol, 'PROPFIND', '/team/cal/', body, { depth: '1' })).status, 403);
  t.equal((await viaGateway(hazel, 'PROPFIND', '/team/cal/', body, { depth: '1' })).status, 207);
  t.equal((await viaGateway(carol, 'PROPFIND', '/carol/cal/', body, { depth: '1' })).status, 207, 'her own calendar');
});

t.test('a body the gateway cannot read where it would be judged: a clear 4xx, nothing answered from the calendar', async (t) => {
  const cases: Array<[string, string | Buffer, Record<string, string>, number, RegExp]> = [
    ['a DOCTYPE (entities)', `<!DOCTYPE m [<!ENTITY s "/team/cal/salaries.ics">]><C:calendar-multiget ${NS}><D:href>&s;</D:href></C:calendar-multiget>`, {}, 400, /GW_ERR_BAD_BODY/],
    ['not XML', 'salaries please', {}, 400, /GW_ERR_BAD_BODY/],
    ['an href of another scheme', multiget('mailto:hr@example.com'), {}, 400, /GW_ERR_BAD_BODY/],
    ['gzip', gzipSync(multiget('/team/cal/salaries.ics')), { 'content-encoding': 'gzip' }, 415, /GW_ERR_BODY_ENCODING/],
    ['larger than 256 KiB', `<C:calendar-multiget ${NS}><D:prop>${'x'.repeat(300_000)}</D:prop><D:href>/carol/cal/dentist.ics</D:href></C:calendar-multiget>`, {}, 413, /GW_ERR_BODY_TOO_LARGE/],
    ['more than 250 hrefs', multiget(...Array.from({ length: 251 }, (_, i) => `/carol/cal/${i}.ics`)), {}, 413, /GW_ERR_BODY_TOO_LARGE/],
  ];
  for (const [name, body, headers, status, code] of cases) {
    const res = await viaGateway(carol, 'REPORT', '/carol/cal/', body, { accept: 'application/json', ...headers });
    t.equal(res.status, status, `${name}: ${status}`);
    t.match(res.body, code, name);
    t.notMatch(res.body, /Salaries|Dentist/, name);
  }
});

t.test('through /_auth/verify: a REPORT reads inside its calendar there too (forward-auth sees no body)', async (t) => {
  const verify = (cookie: string, path: string, depth: string) => callVerify(gw, { 'x-original-uri': path, 'x-original-method': 'REPORT', depth, cookie: withSession(gw, cookie).cookie });
  t.equal((await verify(carol, '/team/cal/', '0')).status, 403);
  t.equal((await verify(carol, '/team/cal/lunch.ics', '0')).status, 403, 'a REPORT sent to an event runs on its calendar');
  t.equal((await verify(carol, '/carol/cal/', '1')).status, 204);
  t.equal((await verify(hazel, '/team/cal/', '0')).status, 204);
});
