import t from 'tap';
import { rewrittenPaths } from '../../src/access/rewritten-url.js';
import { createAccessRules } from '../../src/access/rules.js';

t.test('X-Original-URL and X-Rewrite-URL, in every spelling, are read as normalised paths', async (t) => {
  t.same(rewrittenPaths({ 'x-original-url': '/admin/users?x=1' }), { ok: true, paths: ['/admin/users'] });
  t.same(rewrittenPaths({ 'x-rewrite-url': '/%61dmin/../admin' }), { ok: true, paths: ['/admin'] });
  t.same(rewrittenPaths({ x_original_url: '/admin', 'x-rewrite.url': '/internal' }), { ok: true, paths: ['/admin', '/internal'] });
  t.same(rewrittenPaths({ 'x-original-url': ['/a', '/b'] }), { ok: true, paths: ['/a', '/b'] }, 'sent twice');
  t.same(rewrittenPaths({ host: 'app', 'x-original-uri': '/admin', 'x-forwarded-uri': '/admin' }), { ok: true, paths: [] }, 'other headers are not these');
});

t.test('one that cannot be normalised is refused', async (t) => {
  for (const value of ['admin', 'http://elsewhere/admin', '/a/%2f/b', '/../admin', '']) t.equal(rewrittenPaths({ 'x-original-url': value }).ok, false, JSON.stringify(value));
});

t.test('the rules for a rewritten path, the default included, must allow the request too', async (t) => {
  const rules = createAccessRules(['/public'], [{ path: '/admin', methods: null, policy: 'deny', groups: [], forwardGroups: null }]);
  t.equal(rules.match('/public/x', 'GET').policy, 'public', 'control');
  t.equal(rules.match('/public/x', 'GET', { rewritten: ['/admin/users'] }).policy, 'deny');
  t.equal(rules.match('/public/x', 'GET', { rewritten: ['/reports'] }).policy, 'authenticated', 'the default of the rewritten path: a session');
  t.equal(rules.match('/public/x', 'GET', { rewritten: ['/admin;x/users'] }).policy, 'deny', 'its Servlet reading too');
});
