// Access rules as tables: parsing and validation of the rules file, first-match-wins matching
// with segment-boundary prefixes and methods, and the verdict for anonymous and signed-in users.
import t from 'tap';
import { createAccessRules, decideAccess, parseAccessRules, type AccessRuleSpec } from '../../src/access/rules.js';

const YAML_RULES = `
rules:
  - path: /health
    policy: public
  - path: /admin/audit
    methods: [GET]
    policy: { groups: [auditors] }
  - path: /admin
    policy: { groups: [admins, ops] }
    forward_groups: [admins, "team-*"]
  - path: /internal
    policy: deny
  - path: /api
    methods: [post, DELETE]
    policy: { groups: [writers] }
`;

function rulesFrom(text: string): AccessRuleSpec[] {
  const { rules, problems } = parseAccessRules(text);
  if (problems.length > 0) throw new Error(problems.join('\n'));
  return rules;
}

t.test('YAML and JSON files give the same rules', async (t) => {
  const yaml = rulesFrom(YAML_RULES);
  const json = rulesFrom(JSON.stringify(yaml.map((r) => ({ path: r.path, ...(r.methods ? { methods: r.methods } : {}), policy: r.policy === 'groups' ? { groups: r.groups } : r.policy, ...(r.forwardGroups ? { forward_groups: r.forwardGroups } : {}) }))));
  t.same(json, yaml);
  t.equal(yaml.length, 5);
  t.same(yaml[4]?.methods, ['POST', 'DELETE'], 'methods are upper-cased');
  t.same(yaml[2], { path: '/admin', methods: null, policy: 'groups', groups: ['admins', 'ops'], forwardGroups: ['admins', 'team-*'] });
});

t.test('first match wins; no match means authenticated; public paths come first', async (t) => {
  const rules = createAccessRules(['/admin/welcome'], rulesFrom(YAML_RULES));
  const cases: Array<[path: string, method: string, policy: string, index: number]> = [
    ['/health', 'GET', 'public', 1],
    ['/health/deep', 'POST', 'public', 1],
    ['/healthz', 'GET', 'authenticated', 0], // segment boundary: not /health
    ['/admin/audit', 'GET', 'groups', 2],
    ['/admin/audit/2026', 'HEAD', 'groups', 2], // a GET rule also governs HEAD
    ['/admin/audit', 'POST', 'groups', 3], // method not listed: falls through to /admin
    ['/admin', 'GET', 'groups', 3],
    ['/admin/', 'GET', 'groups', 3],
    ['/admin/welcome', 'GET', 'public', 0], // GATEWAY_PUBLIC_PATHS entries win over every rule
    ['/administrator', 'GET', 'authenticated', 0],
    ['/internal/x', 'GET', 'deny', 4],
    ['/api/items', 'POST', 'groups', 5],
    ['/api/items', 'GET', 'authenticated', 0],
    ['/', 'GET', 'authenticated', 0],
  ];
  for (const [path, method, policy, index] of cases) {
    const rule = rules.match(path, method);
    t.same({ policy: rule.policy, index: rule.index }, { policy, index }, `${method} ${path}`);
  }
});

t.test('a rule for / matches everything after it is reached', async (t) => {
  const rules = createAccessRules([], rulesFrom('[{"path": "/", "policy": "deny"}]'));
  t.equal(rules.match('/anything/at/all', 'GET').policy, 'deny');
  t.equal(rules.match('/', 'GET').policy, 'deny');
});

t.test('verdicts for anonymous and signed-in users', async (t) => {
  const rules = createAccessRules([], rulesFrom(YAML_RULES));
  const admin = { groups: ['ops'] };
  const nobody = { groups: [] as string[] };
  const cases: Array<[path: string, who: { groups: string[] } | null, verdict: string]> = [
    ['/health', null, 'allow'],
    ['/internal', admin, 'forbidden'],
    ['/internal', null, 'forbidden'],
    ['/admin', null, 'login'],
    ['/admin', nobody, 'forbidden'],
    ['/admin', admin, 'allow'],
    ['/other', null, 'login'],
    ['/other', nobody, 'allow'],
  ];
  for (const [path, who, verdict] of cases) {
    t.equal(decideAccess(rules.match(path, 'GET'), who), verdict, `${path} as ${who ? JSON.stringify(who.groups) : 'anonymous'}`);
  }
});

t.test('forward_groups narrows the groups sent upstream (exact names and prefix*)', async (t) => {
  const rule = createAccessRules([], rulesFrom(YAML_RULES)).match('/admin', 'GET');
  t.same(rule.filterGroups?.(['admins', 'ops', 'team-blue', 'teams', 'finance']), ['admins', 'team-blue']);
  t.equal(createAccessRules([], rulesFrom(YAML_RULES)).match('/other', 'GET').filterGroups, null);
});

t.test('every problem in a rules file is reported, naming the rule', async (t) => {
  const { problems } = parseAccessRules(`
- path: admin
  policy: { groups: [admins] }
- path: /a/../b
  policy: public
- path: /ok
  policy: allow
- path: /ok2
  methds: [GET]
  policy: deny
- path: /ok3
  methods: []
  policy: { groups: [] }
- path: /fine
  policy: authenticated
- 42
- path: /a@b
  policy: deny
- path: /x%2Cy
  policy: deny
- path: /ok4
  policy: { groups: ["admin*"] }
- path: /caf%C3%A9
  policy: deny
`);
  t.same(problems, [
    'rule #1: `path` must be a string starting with /',
    'rule #2: `path` "/a/../b" is not a normalised path (write "/b")',
    'rule #3: `policy` must be public, authenticated, deny or { groups: [...] }',
    'rule #4: unknown key "methds" (allowed: path, methods, policy, forward_groups, mfa)',
    'rule #5: `methods` must be a non-empty list of HTTP methods like [GET, POST]',
    'rule #5: `policy.groups` must be a non-empty list of group names',
    'rule #7: must be an object with `path` and `policy`',
    'rule #8: `path` "/a@b" may hold only letters, digits, - . _ ~ / and %XX escapes of non-ASCII bytes',
    'rule #9: `path` "/x%2Cy" may hold only letters, digits, - . _ ~ / and %XX escapes of non-ASCII bytes',
    'rule #10: `policy.groups` names groups exactly; `*` is not a pattern here',
  ]);
});

t.test('a file that is not a rule list says so in one line', async (t) => {
  t.same(parseAccessRules('{ "rule": [] }').problems, ['must be a list of rules, or an object with a `rules` list']);
  t.match(parseAccessRules('rules: [ {path: /a').problems[0], /^not valid JSON or YAML \(/);
  t.same(parseAccessRules('').problems, ['must be a list of rules, or an object with a `rules` list']);
});

t.test('the shipped example rules file is valid', async (t) => {
  const { readFileSync } = await import('node:fs');
  const { problems, rules } = parseAccessRules(readFileSync(new URL('../../deploy/examples/access-rules.yaml', import.meta.url), 'utf8'));
  t.same(problems, []);
  t.equal(rules.length, 4);
});

t.test('rules that can never match are reported: ordering mistakes silently open or close paths', async (t) => {
  const { findShadowedRules } = await import('../../src/access/rules.js');
  const rules = rulesFrom(`
- path: /admin
  policy: { groups: [admins] }
- path: /admin/reports
  methods: [GET]
  policy: { groups: [auditors] }
- path: /api
  methods: [GET, POST]
  policy: authenticated
- path: /api/v2
  methods: [GET]
  policy: deny
- path: /api/v3
  methods: [DELETE]
  policy: deny
- path: /static/app
  policy: deny
`);
  t.same(findShadowedRules(['/static'], rules), [
    'rule #2 (/admin/reports) can never match: rule #1 (/admin) comes first and matches everything it does',
    'rule #4 (/api/v2) can never match: rule #3 (/api) comes first and matches everything it does',
    'rule #6 (/static/app) can never match: GATEWAY_PUBLIC_PATHS entry /static comes first and matches everything it does',
  ]);
  t.same(findShadowedRules([], rulesFrom(YAML_RULES)), [], 'the example in this file is well ordered');
});

t.test('path parameters never widen access: both readings must allow (SPEC 4)', async (t) => {
  const rules = createAccessRules(['/public'], rulesFrom(YAML_RULES));
  const ops = { groups: ['ops'] };
  const bob = { groups: ['staff'] };
  const cases: Array<[path: string, anonymous: string, staff: string, ops: string]> = [
    ['/admin;x/secret', 'login', 'forbidden', 'allow'],
    ['/admin;', 'login', 'forbidden', 'allow'],
    ['/;x/admin', 'login', 'forbidden', 'allow'],
    ['/admin%3Bx/secret', 'login', 'forbidden', 'allow'],
    ['/internal;a/b', 'forbidden', 'forbidden', 'forbidden'],
    ['/internal%3B', 'forbidden', 'forbidden', 'forbidden'],
    ['/health;x/deep', 'login', 'allow', 'allow'], // public only by the Servlet reading: the raw one needs a session
    ['/public;jsessionid=1/page', 'login', 'allow', 'allow'],
    ['/health/x;y', 'allow', 'allow', 'allow'], // public by both readings
    ['/app;x/page', 'login', 'allow', 'allow'],
  ];
  for (const [path, anonymous, staff, admin] of cases) {
    const rule = rules.match(path, 'GET');
    t.same([decideAccess(rule, null), decideAccess(rule, bob), decideAccess(rule, ops)], [anonymous, staff, admin], path);
  }
});

t.test('combined readings: a group from each rule is needed, and only groups both let through are sent', async (t) => {
  const rules = createAccessRules([], rulesFrom(`
- { path: /a, policy: { groups: [red] }, forward_groups: [red, blue] }
- { path: /b, policy: { groups: [blue] }, forward_groups: ["b*"] }
`));
  const rule = rules.match('/a;x', 'GET'); // raw: no rule; Servlet reading: /a
  t.equal(rule.policy, 'groups');
  const both = rules.match('/b/..;/a', 'GET'); // refused by normalisation (400) on every door; here raw is under /b, the Servlet reading /a
  t.equal(decideAccess(both, { groups: ['red'] }), 'forbidden', 'red alone: /b refuses');
  t.equal(decideAccess(both, { groups: ['blue'] }), 'forbidden', 'blue alone: /a refuses');
  t.equal(decideAccess(both, { groups: ['red', 'blue'] }), 'allow');
  t.same(both.filterGroups?.(['red', 'blue', 'black']), ['blue'], 'only what both filters keep');
  t.not(both.key, rules.match('/b', 'GET').key, 'its own cache key');
  t.equal(rules.match('/b/..;/a', 'GET'), both, 'memoised: the same rule object');
});

t.test('an unknown method (forward-auth without a method header) is any method', async (t) => {
  const rules = createAccessRules([], rulesFrom(`
- { path: /export, methods: [GET], policy: deny }
- { path: /api, methods: [POST, DELETE], policy: { groups: [writers] } }
- { path: /open, methods: [GET], policy: public }
- { path: /mixed, methods: [GET], policy: public }
- { path: /mixed, policy: { groups: [staff] } }
`));
  t.ok(rules.methodScoped);
  const writer = { groups: ['writers'] };
  const staff = { groups: ['staff'] };
  t.equal(rules.match('/export/all', null).policy, 'deny', 'a deny for one method denies');
  t.equal(decideAccess(rules.match('/api/items', null), { groups: [] }), 'forbidden', 'groups for some methods are needed');
  t.equal(decideAccess(rules.match('/api/items', null), writer), 'allow');
  t.equal(decideAccess(rules.match('/open', null), null), 'login', 'public for GET only: other methods need a session');
  t.equal(decideAccess(rules.match('/mixed', null), staff), 'allow');
  t.equal(decideAccess(rules.match('/mixed', null), null), 'login');
  t.equal(rules.match('/elsewhere', null).policy, 'authenticated');
  t.equal(rules.match('/export;x', null).policy, 'deny', 'with path parameters too');
  const plain = createAccessRules(['/p'], rulesFrom('[{"path": "/x", "policy": "deny"}]'));
  t.notOk(plain.methodScoped);
  t.equal(plain.match('/p/q', null).policy, 'public', 'without method-scoped rules the method does not matter');
});

t.test('rules may name WebDAV and CalDAV methods', async (t) => {
  const rules = createAccessRules([], rulesFrom('- { path: /dav, methods: [propfind, MKCALENDAR, VERSION-CONTROL, M-SEARCH], policy: deny }\n'));
  for (const method of ['PROPFIND', 'MKCALENDAR', 'VERSION-CONTROL', 'M-SEARCH']) t.equal(rules.match('/dav/x', method).policy, 'deny', method);
  t.equal(rules.match('/dav/x', 'GET').policy, 'authenticated');
});

t.test('a PHP front controller\'s reading adds the rules that match it, not the default', async (t) => {
  const rules = createAccessRules(['/index.php/help'], [
    { path: '/admin', methods: null, policy: 'groups', groups: ['admins'], forwardGroups: null },
    { path: '/internal', methods: null, policy: 'deny', groups: [], forwardGroups: null },
  ]);
  t.same(rules.match('/index.php/admin', 'GET').groups, ['admins'], '/index.php/admin is /admin');
  t.same(rules.match('/app/INDEX.PHP/admin/x', 'GET').policy, 'authenticated', '/app/admin/x: no rule there');
  t.equal(rules.match('/index.php/internal/x', 'GET').policy, 'deny');
  t.equal(rules.match('/index.php/help/faq', 'GET').policy, 'public', 'a public path written with the script stays public');
  t.equal(rules.match('/index.php/other', 'GET').policy, 'authenticated');
  t.equal(rules.match('/index.php/admin', null).policy, 'groups', 'an unknown method too');
});

t.test('a format-suffix router\'s reading (Rails, older Spring MVC) adds the rules that match it, not the default', async (t) => {
  const rules = createAccessRules(['/styles', '/login'], [
    { path: '/admin', methods: null, policy: 'groups', groups: ['admins'], forwardGroups: null },
    { path: '/internal', methods: null, policy: 'deny', groups: [], forwardGroups: null },
    { path: '/orders', methods: ['DELETE'], policy: 'deny', groups: [], forwardGroups: null },
  ]);
  t.same(rules.match('/admin.json', 'GET').groups, ['admins'], '/admin.json is /admin');
  t.same(rules.match('/admin.json/', 'GET').groups, ['admins'], 'with a trailing slash too');
  t.same(rules.match('/admin.json;x=1', 'GET').groups, ['admins'], 'after path parameters are removed (Spring removes both)');
  t.equal(rules.match('/internal.xml', 'GET').policy, 'deny');
  t.equal(rules.match('/orders.json', 'DELETE').policy, 'deny', 'with the rule\'s method');
  t.equal(rules.match('/orders.json', 'GET').policy, 'authenticated');
  t.equal(rules.match('/login.css', 'GET').policy, 'authenticated', 'the default still holds for the path as sent');
  t.equal(rules.match('/styles/site.css', 'GET').policy, 'public', 'a public folder stays public');
  t.equal(rules.match('/administrator.json', 'GET').policy, 'authenticated', 'segment boundaries hold');
  t.equal(rules.match('/reports/admin.json', 'GET').policy, 'authenticated');
});

t.test('the path is also read without case (Express, IIS): deny and groups rules apply to every spelling, public paths do not', async (t) => {
  const rules = createAccessRules(['/public'], [
    { path: '/admin', methods: null, policy: 'groups', groups: ['admins'], forwardGroups: null },
    { path: '/Internal', methods: null, policy: 'deny', groups: [], forwardGroups: null },
    { path: '/orders', methods: ['DELETE'], policy: 'deny', groups: [], forwardGroups: null },
  ]);
  t.same(rules.match('/ADMIN', 'GET').groups, ['admins']);
  t.same(rules.match('/Admin/users', 'GET').groups, ['admins']);
  t.same(rules.match('/ADMIN.json', 'GET').groups, ['admins'], 'with its format reading');
  t.equal(rules.match('/internal/x', 'GET').policy, 'deny', 'a rule written with capitals covers the lower-case path');
  t.equal(rules.match('/ORDERS/1', 'DELETE').policy, 'deny', 'with the rule\'s method');
  t.equal(rules.match('/ORDERS/1', 'GET').policy, 'authenticated');
  t.equal(rules.match('/ORDERS/1', null).policy, 'deny', 'an unknown method');
  t.equal(rules.match('/PUBLIC/x', 'GET').policy, 'authenticated', 'public paths stay case-sensitive');
  t.equal(rules.match('/public/x', 'GET').policy, 'public');
  t.equal(rules.match('/Reports', 'GET').policy, 'authenticated');
});
