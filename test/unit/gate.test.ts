// The access gate's own contract (access/gate.ts): the order authenticators are asked in, what a
// failed credential means, the audit lookup, unknown paths, logout paths and a rule swap.
import t from 'tap';
import { createGate, type Authentication, type Authenticator, type Credentials } from '../../src/access/gate.js';
import type { AccessRuleSpec } from '../../src/access/rules.js';

const rule = (path: string, policy: AccessRuleSpec['policy'], groups: string[] = []): AccessRuleSpec => ({ path, methods: null, policy, groups, forwardGroups: null });
const principal = (user: string, kind: string, groups: string[] = []) => ({ kind, idHash: `${kind}:${user}`, record: { user, email: null, groups }, session: null, ambient: kind !== 'token' });

/** An authenticator reading one header; `asked` records every call. */
function headerAuthenticator(kind: string, header: string, users: Record<string, Authentication>, asked: string[]): Authenticator {
  return {
    kind,
    presented: (credentials) => credentials.headers[header] !== undefined,
    async authenticate(credentials) {
      asked.push(kind);
      const value = credentials.headers[header];
      if (value === undefined) return { outcome: 'missing', clearCookie: false };
      return users[String(value)] ?? { outcome: 'invalid', clearCookie: kind === 'cookie' };
    },
  };
}

const asked: string[] = [];
const gate = createGate({
  publicPaths: ['/public'],
  rules: [rule('/internal', 'deny'), rule('/admin', 'groups', ['admins'])],
  logoutPaths: ['/logout'],
  authenticators: [
    headerAuthenticator('cookie', 'x-cookie', { ada: { outcome: 'valid', principal: principal('ada', 'session', ['admins']) } }, asked),
    headerAuthenticator('token', 'x-token', { bob: { outcome: 'valid', principal: principal('bob', 'token') } }, asked),
  ],
});
const creds = (headers: Record<string, string> = {}): Credentials => ({ cookies: {}, headers });
const decide = (path: string | null, headers: Record<string, string> = {}) => gate.decide({ path, method: 'GET', credentials: creds(headers) });

t.test('authenticators are asked in order; the first that finds its credential decides', async (t) => {
  asked.length = 0;
  t.match(await decide('/x', { 'x-token': 'bob' }), { kind: 'allow', principal: { kind: 'token', record: { user: 'bob' } } }, 'a token when no cookie');
  t.same(asked, ['cookie', 'token']);
  asked.length = 0;
  t.match(await decide('/x', { 'x-cookie': 'ada', 'x-token': 'bob' }), { kind: 'allow', principal: { record: { user: 'ada' } } }, 'the cookie first');
  t.same(asked, ['cookie'], 'the token is not asked');
  t.match(await decide('/x', { 'x-cookie': 'stale', 'x-token': 'bob' }), { kind: 'login', outcome: 'invalid', clearCookie: true }, 'a failed credential is never rescued by the next');
  t.match(await decide('/x'), { kind: 'login', outcome: 'missing', clearCookie: false }, 'nothing presented');
});

t.test('rules: public before any authenticator, deny with the user for the audit only, groups', async (t) => {
  asked.length = 0;
  t.match(await decide('/public/x', { 'x-cookie': 'ada' }), { kind: 'public' });
  t.same(asked, [], 'a public path asks nobody');
  t.match(await decide('/internal', { 'x-token': 'bob' }), { kind: 'forbidden', user: 'bob', principal: null, rule: { index: 1 } });
  asked.length = 0;
  t.match(await decide('/internal'), { kind: 'forbidden', user: null });
  t.same(asked, [], 'the audit lookup asks only authenticators whose credential is there');
  t.match(await decide('/admin/x', { 'x-token': 'bob' }), { kind: 'forbidden', user: 'bob', principal: { kind: 'token' }, rule: { index: 2 } });
  t.match(await decide('/admin/x', { 'x-cookie': 'ada' }), { kind: 'allow', forwarded: { record: { groups: ['admins'] } } });
});

t.test('logout paths only for a door that asks, in both readings', async (t) => {
  t.match(await gate.decide({ path: '/logout', method: 'GET', credentials: creds(), logout: true }), { kind: 'logout' });
  t.match(await gate.decide({ path: '/logout;jsessionid=1', method: 'GET', credentials: creds(), logout: true }), { kind: 'logout' });
  t.match(await decide('/logout'), { kind: 'login' }, 'forward-auth: the rules decide');
});

t.test('an unknown path: undecidable when a rule restricts, else a session is needed', async (t) => {
  t.match(await decide(null, { 'x-cookie': 'ada' }), { kind: 'undecidable' });
  const open = createGate({ publicPaths: ['/public'], rules: [], logoutPaths: [], authenticators: [] });
  t.match(await open.decide({ path: null, method: null, credentials: creds() }), { kind: 'login', outcome: 'missing' });
});

t.test('replaceRules: the next decision uses the new rules; rules that do not compile change nothing', async (t) => {
  const local = createGate({ publicPaths: [], rules: [rule('/a', 'deny')], logoutPaths: [], authenticators: [] });
  const before = local.decide({ path: '/a', method: 'GET', credentials: creds() });
  local.replaceRules({ publicPaths: ['/a'], rules: [], logoutPaths: [] });
  t.match(await before, { kind: 'forbidden' }, 'a decision under way keeps the rules it started with');
  t.match(await local.decide({ path: '/a', method: 'GET', credentials: creds() }), { kind: 'public' });
  t.throws(() => local.replaceRules({ publicPaths: ['nope'], rules: [], logoutPaths: [] }));
  t.match(await local.decide({ path: '/a', method: 'GET', credentials: creds() }), { kind: 'public' }, 'the old rules stay');
});
