import t from 'tap';
import { bodyMayNamePaths, createBodyPathScanner, MAX_HREFS, MAX_SCANNED_XML_BYTES, type BodyPathOptions, type BodyPaths } from '../../src/access/body-paths.js';
import { appBasePath } from '../../src/access/destination.js';

const OPTIONS: BodyPathOptions = { contentType: 'application/xml; charset=utf-8', requestPath: '/cal/a/', basePath: null };

/** Scans `body` fed in chunks of `size` bytes (0: whole). */
async function scan(body: string | Buffer, size = 0, options: Partial<BodyPathOptions> = {}): Promise<BodyPaths> {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const scanner = createBodyPathScanner({ ...OPTIONS, ...options });
  for (let i = 0; i < bytes.length; i += size || bytes.length) if (!scanner.write(bytes.subarray(i, i + (size || bytes.length)))) break;
  return scanner.end();
}

const NS = 'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"';
const MULTIGET = `<?xml version="1.0" encoding="utf-8"?>
<C:calendar-multiget ${NS}>
  <D:prop><D:getetag/><C:calendar-data/></D:prop>
  <D:href>/cal/a/x.ics</D:href>
  <D:href>http://other.example/cal/b/%79.ics</D:href>
  <D:href> /cal/c/Zoë meeting.ics </D:href>
  <!-- <D:href>/commented/out</D:href> -->
  <D:href><![CDATA[/cal/d/]]>&#x7A;.ics</D:href>
  <D:href>/cal/a/x.ics</D:href>
</C:calendar-multiget>`;

t.test('every href, normalised, once each, whatever the chunking', async (t) => {
  const expected = { ok: true, named: ['/cal/a/x.ics', '/cal/b/y.ics', '/cal/c/Zo%C3%AB%20meeting.ics', '/cal/d/z.ics'], readsMembers: true };
  for (const size of [0, 1, 2, 3, 7, 64]) t.same(await scan(MULTIGET, size), expected, `chunks of ${size || 'the whole'} bytes`);
});

t.test('a body naming no href, or none at all', async (t) => {
  t.same(await scan(`<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>`), { ok: true, named: null, readsMembers: false });
  t.same(await scan(`<D:propfind ${NS}><D:prop><C:calendar-data/></D:prop></D:propfind>`), { ok: true, named: null, readsMembers: true }, 'asks for the content');
  t.same(await scan(`<x xmlns:CR="urn:ietf:params:xml:ns:carddav"><CR:address-data/></x>`), { ok: true, named: null, readsMembers: true }, 'a vCard\'s content');
  t.same(await scan(''), { ok: true, named: null, readsMembers: false }, 'empty');
});

t.test('what the scan cannot read as the app would is refused, with why', async (t) => {
  const refused = async (body: string | Buffer, why: RegExp, tooLarge = false, options: Partial<BodyPathOptions> = {}) => {
    const result = await scan(body, 1, options);
    t.equal(result.ok, false, String(body).slice(0, 60));
    if (!result.ok) {
      t.match(result.reason, why);
      t.equal(result.tooLarge, tooLarge);
    }
  };
  await refused('<!DOCTYPE x [<!ENTITY a "/admin">]><x><D:href xmlns:D="DAV:">&a;</D:href></x>', /DOCTYPE|entity/i);
  await refused('<x><href>&bogus;</href></x>', /not XML/);
  await refused('not xml', /not XML/);
  await refused('<x><href>/a</x>', /not XML/);
  await refused('<x><href>//host/a</href></x>', /network-path/);
  await refused('<x><href>ftp://h/a</href></x>', /must be an absolute/);
  await refused(`<x><href>/${'a'.repeat(9000)}</href></x>`, /too long/);
  await refused(Buffer.alloc(MAX_SCANNED_XML_BYTES + 1, ' '), /larger than/, true);
  const scanner = createBodyPathScanner(OPTIONS);
  t.equal(scanner.write(Buffer.from('<x>'.repeat(16_000))), false, 'a chunk nesting too deep fails within it');
  // Where the servers' parsers read otherwise (ElementTree stops an href's text at a child element;
  // Python's and WHATWG's URL parsers delete tabs and newlines; Radicale decodes by the charset).
  await refused('<x><href>/cal/b/y.ics<x/>/../z.ics</href></x>', /an element inside an href/);
  await refused('<x><href>/cal/b/y<!-- -->.ics<y/></href></x>', /an element inside an href/);
  for (const control of ['&#9;', '&#10;', '&#13;', '\t', '\n', '&#0;', '&#127;']) await refused(`<x><href>/cal/b/y${control}.ics</href></x>`, /control character|not XML/);
  await refused('<x><href>/a</href></x>', /only a UTF-8 charset/, false, { contentType: 'application/xml; charset=utf-7' });
  await refused('<x><href>/a</href></x>', /only a UTF-8 charset/, false, { contentType: 'text/xml;charset="ISO-8859-1"' });
  for (const contentType of ['application/xml; x=charset=utf-7', 'application/xml;xcharset=utf-7', 'application/xml; charset=utf-8; charset=utf-7', 'application/xml; charset=utf-8x']) {
    await refused('<x><href>/a</href></x>', /only a UTF-8 charset/, false, { contentType });
  }
  await refused(`<x>${Array.from({ length: MAX_HREFS + 1 }, (_, i) => `<href>/${i}</href>`).join('')}</x>`, /more than 250 hrefs/, true);
  await refused('<x><href>/a</href></x>', /sent twice/, false, { basePath: { unusable: 'X-Script-Name sent twice' } });
  // The parser keeps every open element and its attributes: deep or wide bodies are refused at once.
  await refused(`${'<a>'.repeat(65)}`, /nested deeper than 64/);
  await refused(`<a ${Array.from({ length: 65 }, (_, i) => `x${i}=""`).join(' ')}/>`, /more than 64 attributes/);
  await refused(`<x>${'<a/>'.repeat(2_001)}</x>`, /more than 2000 elements/, true);
  await refused(`<x>${Array.from({ length: 60 }, (_, i) => `<e${i} v="${'x'.repeat(300)}">`).join('')}`, /more than 16384 bytes of attributes/);
  await refused(`<x>${Array.from({ length: MAX_HREFS }, (_, i) => `<href>r${i}.ics</href>`).join('')}</x>`, /more than 500 paths named/, true, { basePath: '/cal' });
  await refused('<?xml version="1.0" encoding="UTF-7"?><x><href>/a</href>+ADw-href+AD4-/b+ADw-/href+AD4-</x>', /encoding UTF-7/);
  await refused(Buffer.from([...Buffer.from('<x><href>/caf'), 0xe9, ...Buffer.from('.ics</href></x>')]), /not UTF-8/);
  await refused(Buffer.from('\ufeff<x/>', 'utf16le'), /not UTF-8|not XML/);
});

t.test('relative hrefs resolve against the request path; the base path a trusted proxy names is cut off too', async (t) => {
  t.same(await scan('<x><href>y.ics</href><href>../b/z.ics</href><href>?q</href></x>'), { ok: true, named: ['/cal/a/y.ics', '/y.ics', '/cal/b/z.ics', '/b/z.ics', '/cal/a/', '/'], readsMembers: false }, 'against the request path (SabreDAV) and from the root (Radicale)');
  t.same(await scan('<x><href>/dav/cal/a/y.ics</href><href>/other/z</href></x>', 0, { basePath: '/dav' }), { ok: true, named: ['/dav/cal/a/y.ics', '/cal/a/y.ics', '/other/z'], readsMembers: false });
  t.same(await scan('<?xml version="1.0" encoding="utf-8"?><x><href>/a</href></x>', 0, { contentType: 'text/xml; charset=US-ASCII' }), { ok: true, named: ['/a'], readsMembers: false }, 'UTF-8 or ASCII, declared either way');
  t.same(await scan(Buffer.from('\ufeff<x><href>/a</href></x>')), { ok: true, named: ['/a'], readsMembers: false }, 'a UTF-8 byte order mark');
  t.equal(appBasePath({ 'x-script-name': '/dav/' }), '/dav');
  t.equal(appBasePath({ X_Script_Name: '/dav' }), '/dav', 'any spelling');
  t.equal(appBasePath({ 'x-script-name': '' }), null);
  t.equal(appBasePath({}), null);
  for (const value of ['/%61', '/a,/b', 'dav', '/a b']) t.same(appBasePath({ 'x-script-name': value }), { unusable: 'X-Script-Name is not one plain path' }, value);
  t.same(appBasePath({ 'x-script-name': '/a', X_Script_Name: '/b' }), { unusable: 'X-Script-Name sent twice' }, 'two spellings, which the server joins');
});

t.test('a scanner that has failed says so at once, and reads no more', async (t) => {
  const scanner = createBodyPathScanner(OPTIONS);
  t.equal(scanner.write(Buffer.from('<x>')), true);
  t.equal(scanner.write(Buffer.from('</y>')), false);
  t.equal(scanner.write(Buffer.from('<more/>')), false, 'the parser is not fed again');
  t.match(await scanner.end(), { ok: false, reason: /not XML/ });
});

t.test('which requests may name paths in their body', async (t) => {
  for (const method of ['REPORT', 'SEARCH', 'BIND', 'REBIND']) t.equal(bodyMayNamePaths(method, {}), true, method);
  t.equal(bodyMayNamePaths('PROPFIND', { depth: '1' }), true, 'PROPFIND Depth 1: its members\' content');
  for (const depth of ['0', 'infinity']) t.equal(bodyMayNamePaths('PROPFIND', { depth }), false, `PROPFIND Depth ${depth}`);
  t.equal(bodyMayNamePaths('PROPFIND', {}), false, 'PROPFIND without Depth reads the whole tree anyway');
  for (const method of ['GET', 'POST', 'PUT', 'PROPPATCH', 'UNBIND', 'LOCK']) t.equal(bodyMayNamePaths(method, {}), false, method);
});
