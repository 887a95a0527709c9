import t from 'tap';
import { readDestination, readReference, readsWholeTree, requestDestination } from '../../src/access/destination.js';
import { createAccessRules } from '../../src/access/rules.js';

t.test('a Destination is read as one normalised path, and forwarded in that form', async (t) => {
  const read: Array<[string, string, string]> = [
    ['https://app.example/dav/a.txt', '/dav/a.txt', 'https://app.example/dav/a.txt'],
    ['HTTP://App.Example:8080/dav/x/../a.txt', '/dav/a.txt', 'HTTP://App.Example:8080/dav/a.txt'],
    ['http://app.example', '/', 'http://app.example/'],
    ['/dav//%61.txt', '/dav/a.txt', '/dav/a.txt'],
    ['/dav/a.txt?x=1', '/dav/a.txt', '/dav/a.txt?x=1'],
    ['/dav/admin;x=1/a', '/dav/admin;x=1/a', '/dav/admin;x=1/a'],
  ];
  for (const [value, path, header] of read) t.same(readDestination(value), { ok: true, path, header }, value);
});

t.test('anything that is not one absolute http(s) URI or absolute path is refused', async (t) => {
  for (const value of ['dav/a', '//host/dav/a', 'ftp://host/a', 'http:///a', 'http://user@host/a', 'http://host\\a', 'http://host?x', '/a, /b', '/a/%2f', '/../a', 'mailto:x@y', '']) {
    const reading = readDestination(value);
    t.equal(reading.ok, false, JSON.stringify(value));
  }
  t.equal(readDestination(['/a', '/b']).ok, false, 'two headers');
});

t.test('only COPY and MOVE have one, unless the method is not known', async (t) => {
  const headers = { destination: '/dav/a' };
  t.equal(requestDestination('GET', headers), null);
  t.equal(requestDestination('PUT', headers), null);
  t.same(requestDestination('MOVE', headers), { ok: true, path: '/dav/a', header: '/dav/a' });
  t.same(requestDestination('COPY', headers), { ok: true, path: '/dav/a', header: '/dav/a' });
  t.same(requestDestination(null, headers), { ok: true, path: '/dav/a', header: '/dav/a' });
  t.equal(requestDestination('MOVE', {}), null, 'none sent: the app answers');
});

t.test('the rule for a request with a Destination allows only what the rules at both paths allow', async (t) => {
  const rules = createAccessRules(['/public'], [
    { path: '/admin', methods: null, policy: 'groups', groups: ['admins'], forwardGroups: null },
    { path: '/locked', methods: ['MOVE'], policy: 'deny', groups: [], forwardGroups: null },
  ]);
  t.equal(rules.match('/public/a', 'MOVE', { destination: '/public/b' }).policy, 'public');
  t.equal(rules.match('/public/a', 'MOVE', { destination: '/files/b' }).policy, 'authenticated', 'a public source does not open the Destination');
  t.same(rules.match('/files/a', 'MOVE', { destination: '/admin/b' }).groups, ['admins']);
  t.same(rules.match('/admin/a', 'COPY', { destination: '/files/b' }).groups, ['admins'], 'nor the other way round');
  t.equal(rules.match('/files/a', 'MOVE', { destination: '/locked/b' }).policy, 'deny');
  t.equal(rules.match('/files/a', 'COPY', { destination: '/locked/b' }).policy, 'authenticated', 'method-scoped rules apply at the Destination with the request\'s method');
  t.equal(rules.match('/files/a', null, { destination: '/locked/b' }).policy, 'deny', 'an unknown method may be MOVE');
  t.same(rules.match('/files/a', 'MOVE', { destination: '/x;p=1/../admin/b' }).groups, ['admins'], 'the Destination\'s Servlet reading counts too');
});

t.test('COPY, MOVE, DELETE and LOCK act on the tree under their paths: the rules inside count too', async (t) => {
  const rules = createAccessRules(['/dav/drop'], [
    { path: '/dav/admin', methods: null, policy: 'groups', groups: ['admins'], forwardGroups: null },
    { path: '/dav/archive', methods: ['DELETE'], policy: 'deny', groups: [], forwardGroups: null },
    { path: '/', methods: ['PURGE'], policy: 'deny', groups: [], forwardGroups: null },
  ]);
  t.same(rules.match('/dav', 'MOVE', { destination: '/old' }).groups, ['admins'], 'MOVE of the parent of a groups folder');
  t.equal(rules.match('/dav/', 'DELETE').policy, 'deny', 'DELETE of the parent of a folder whose DELETE is denied');
  t.same(rules.match('/dav/', 'COPY', { destination: '/dav/files/x' }).groups, ['admins'], 'COPY of the parent: its members are read');
  t.same(rules.match('/dav/files/x', 'MOVE', { destination: '/dav' }).groups, ['admins'], 'MOVE onto the parent: what is there is overwritten');
  t.equal(rules.match('/dav/files', 'DELETE').policy, 'authenticated', 'nothing ruled inside: the path\'s own rule');
  t.equal(rules.match('/dav/adm', 'DELETE').policy, 'authenticated', 'segment boundaries: /dav/adm is not a parent of /dav/admin');
  t.same(rules.match('/dav/admin', 'DELETE').groups, ['admins'], 'the folder itself');
  t.same(rules.match('/dav', 'LOCK').groups, ['admins'], 'a LOCK of the parent locks what is inside');
  t.equal(rules.match('/dav', 'GET').policy, 'authenticated', 'a GET of the parent reads the parent only');
  t.equal(rules.match('/dav', 'PROPFIND').policy, 'authenticated', 'so does a PROPFIND');
  t.equal(rules.match('/dav', 'COPY', { destination: '/dav2' }).policy, 'groups', 'a rule for another method inside (DELETE) does not apply to COPY');
  t.same(rules.match('/x;p=1/../dav', 'MOVE', { destination: '/old' }).groups, ['admins'], 'the Servlet reading\'s tree too');
});

t.test('a PROPFIND of Depth infinity (or none), and every REPORT and SEARCH, read the whole tree; a PROPFIND of Depth 0 or 1 does not', async (t) => {
  t.equal(readsWholeTree('PROPFIND', { depth: 'infinity' }), true);
  t.equal(readsWholeTree('PROPFIND', { depth: ' Infinity ' }), true);
  t.equal(readsWholeTree('PROPFIND', {}), true, 'no Depth: infinity (RFC 4918)');
  for (const depth of ['infinity', '0', '1', undefined]) {
    const headers = depth === undefined ? {} : { depth };
    t.equal(readsWholeTree('REPORT', headers), true, `REPORT, Depth ${depth ?? '(none)'}: Radicale answers a calendar-query on a collection with every member even at Depth 0`);
    t.equal(readsWholeTree('SEARCH', headers), true, `SEARCH, Depth ${depth ?? '(none)'}: the scope is in the body`);
  }
  for (const depth of ['0', '1', ' 1 ']) t.equal(readsWholeTree('PROPFIND', { depth }), false, `Depth ${depth}`);
  for (const depth of ['one', '1, 1', '0, infinity', '', '2']) t.equal(readsWholeTree('PROPFIND', { depth }), true, `Depth ${JSON.stringify(depth)}: SabreDAV reads it as none, which is infinity`);
  for (const method of ['GET', 'PROPPATCH', 'MKCALENDAR']) t.equal(readsWholeTree(method, { depth: 'infinity' }), false, method);
  t.equal(readsWholeTree(null, { depth: 'infinity' }), false, 'an unknown method: not known to read anything');
});

t.test('BIND, REBIND and UNBIND act inside their collection: the rules inside apply (RFC 5842)', async (t) => {
  const rules = createAccessRules([], [{ path: '/dav/admin', policy: 'groups', groups: ['admins'], methods: null, forwardGroups: null }]);
  for (const method of ['BIND', 'REBIND', 'UNBIND']) t.same(rules.match('/dav', method).groups, ['admins'], method);
  t.equal(rules.match('/dav/files', 'BIND').policy, 'authenticated', 'nothing ruled inside');
});

t.test('paths a WebDAV body names (hrefs) are read like the request\'s own: their rules and the default apply', async (t) => {
  const rules = createAccessRules(['/public'], [{ path: '/team/cal/salaries.ics', policy: 'groups', groups: ['hr'], methods: null, forwardGroups: null }]);
  t.same(rules.match('/team/cal/lunch.ics', 'REPORT').groups, ['hr'], 'a REPORT sent to an event runs on its calendar (sync-collection)');
  t.equal(rules.match('/team/cal/lunch.ics', 'GET').policy, 'authenticated', 'a GET of the event reads the event');
  t.same(rules.match('/team/calendar.ics', 'REPORT').groups, ['hr'], 'a REPORT of /team/calendar.ics may run on /team/, which holds the rule further in');
  t.equal(rules.match('/carol/', 'REPORT').policy, 'authenticated', 'a calendar with no rule inside');
  t.same(rules.match('/team/cal/lunch.ics/', 'REPORT').groups, ['hr'], 'an event named with a slash added (Radicale reads the event): read without its extension, it runs on its calendar');
  t.same(rules.match('/team/cal/lunch.ics/', 'POST', { methods: ['REPORT'] }).groups, ['hr'], 'as a POST that names a REPORT');
  t.same(rules.match('/team/cal/lunch.ics', 'POST', { methods: ['REPORT'] }).groups, ['hr'], 'a POST naming a REPORT, sent to an event, runs on its calendar');
  const siblings = createAccessRules([], [{ path: '/team/hr/', policy: 'groups', groups: ['hr'], methods: null, forwardGroups: null }]);
  t.equal(siblings.match('/team/cal/', 'REPORT').policy, 'authenticated', 'a collection is not read with its folder: a stricter sibling calendar does not refuse it');
  t.equal(siblings.match('/team/cal/lunch.ics/', 'REPORT').policy, 'authenticated', 'nor is an item named with a slash, when its calendar holds no rule');
  t.equal(rules.match('/carol/cal/a.ics', 'REPORT').policy, 'authenticated');
  t.same(rules.match('/carol/cal/a.ics', 'REPORT', { named: ['/team/cal/salaries.ics'] }).groups, ['hr'], 'an href to the ruled event');
  t.same(rules.match('/carol/cal/a.ics', 'REPORT', { named: ['/team/cal/salaries.ics;v=2'] }).groups, ['hr'], 'its Servlet reading too');
  t.equal(rules.match('/carol/cal/a.ics', 'REPORT', { named: ['/team/cal/lunch.ics'] }).policy, 'authenticated', 'an href to another event of that calendar reads that event only');
  t.equal(rules.match('/public/cal/', 'REPORT').policy, 'public');
  t.equal(rules.match('/public/cal/', 'REPORT', { named: ['/team/cal/lunch.ics'] }).policy, 'authenticated', 'a public path naming a private one needs a session');
  t.equal(rules.match('/public/cal/', 'REPORT', { named: ['/public/cal/a.ics'] }).policy, 'public', 'naming public paths only');
});

t.test('a URI reference in a WebDAV body is read as a Destination is, with the reason alone', async (t) => {
  t.same(readReference('http://h.example/a/./b'), { ok: true, path: '/a/b', header: 'http://h.example/a/b' });
  t.same(readReference('/a/%62'), { ok: true, path: '/a/b', header: '/a/b' });
  t.same(readReference('b.ics'), { ok: false, reason: 'must be an absolute http(s) URI or an absolute path' });
  t.same(readReference('//h/a'), { ok: false, reason: 'a network-path reference (//host) is not a path' });
  t.same(readDestination('b.ics'), { ok: false, reason: 'Destination header: must be an absolute http(s) URI or an absolute path' });
});
