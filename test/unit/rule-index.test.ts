// The rule lookup by prefix (access/rule-index.ts) must answer exactly as reading the rules in
// order does: both compared on random tables and paths (seeded, so a failure repeats), then a large
// table through createAccessRules, where the index is what decides.
import t from 'tap';
import { createPrefixLookup, type PrefixEntry } from '../../src/access/rule-index.js';
import { createAccessRules, type AccessRuleSpec } from '../../src/access/rules.js';

interface Entry extends PrefixEntry {
  id: number;
}

/** mulberry32: a small seeded generator, so every run draws the same cases. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const SEGMENTS = ['a', 'b', 'A', 'ab', 'a.b', 'cal', 'x;p', ''];
const METHODS = ['GET', 'HEAD', 'PUT', 'DELETE', 'REPORT'];

t.test('the index answers as the list read in order, on random tables and paths', async (t) => {
  const next = random(13);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T;
  const path = (): string => {
    const depth = Math.floor(next() * 5);
    const segments = Array.from({ length: depth }, () => pick(SEGMENTS));
    return `/${segments.join('/')}${next() < 0.3 ? '/' : ''}`;
  };
  let compared = 0;
  let mismatches = 0;
  for (let table = 0; table < 300; table++) {
    const entries: Entry[] = Array.from({ length: 1 + Math.floor(next() * 60) }, (_, id) => {
      const raw = path();
      const base = raw.endsWith('/') ? raw.slice(0, -1) : raw;
      const methods = next() < 0.6 ? null : new Set(METHODS.filter(() => next() < 0.4));
      return { id, base, baseWithSlash: `${base}/`, methods };
    });
    const inOrder = createPrefixLookup(entries, { readInOrderUpTo: Number.POSITIVE_INFINITY });
    const byIndex = createPrefixLookup(entries, { readInOrderUpTo: 0 });
    for (let probe = 0; probe < 60; probe++) {
      const p = next() < 0.5 ? path() : (pick(entries).base + pick(['', '/', '/a', 'a', '/a/b/']));
      const method = pick(METHODS);
      const ids = (xs: Entry[]) => xs.map((e) => e.id).join(',');
      const same = inOrder.first(p, method)?.id === byIndex.first(p, method)?.id && ids(inOrder.matching(p)) === ids(byIndex.matching(p)) && ids(inOrder.within(p, method)) === ids(byIndex.within(p, method));
      compared++;
      if (!same) {
        mismatches++;
        if (mismatches <= 5) t.fail(`table ${table}, ${method} ${JSON.stringify(p)}: ${inOrder.first(p, method)?.id} vs ${byIndex.first(p, method)?.id}; ${ids(inOrder.matching(p))} vs ${ids(byIndex.matching(p))}; ${ids(inOrder.within(p, method))} vs ${ids(byIndex.within(p, method))}`);
      }
    }
  }
  t.equal(mismatches, 0, `${compared} lookups compared`);
});

t.test('a large table through createAccessRules: first match wins, methods, subtrees, case', async (t) => {
  const filler: AccessRuleSpec[] = Array.from({ length: 60 }, (_, i) => ({ path: `/team${i}/cal`, methods: null, policy: 'groups', groups: [`team${i}`], forwardGroups: null }));
  const specs: AccessRuleSpec[] = [
    ...filler,
    { path: '/hr/salaries', methods: null, policy: 'groups', groups: ['hr'], forwardGroups: null },
    { path: '/hr', methods: ['PUT', 'DELETE'], policy: 'deny', groups: [], forwardGroups: null },
    { path: '/hr', methods: null, policy: 'authenticated', groups: [], forwardGroups: null },
    { path: '/', methods: null, policy: 'public', groups: [], forwardGroups: null },
  ];
  const rules = createAccessRules(['/static'], specs);
  const policy = (path: string, method: string) => rules.match(path, method).policy;
  t.equal(policy('/static/app.js', 'GET'), 'public', 'a public path placed first');
  t.equal(policy('/hr/salaries/2026.pdf', 'GET'), 'groups', 'the earlier, longer rule');
  t.equal(policy('/hr/other', 'PUT'), 'deny', 'a method-scoped rule');
  t.equal(policy('/hr/other', 'GET'), 'authenticated', 'the next rule for other methods');
  t.equal(policy('/hrx', 'GET'), 'public', 'prefixes end at a segment');
  t.equal(policy('/team42/cal/event.ics', 'GET'), 'groups', 'one of many');
  t.equal(policy(`/hr/salaries${'/x'.repeat(4_000)}`, 'GET'), 'groups', 'deep below a rule (only cuts as long as some rule are looked up)');
  t.equal(policy(`${'/x'.repeat(4_000)}/hr/salaries`, 'GET'), 'public', 'a rule’s path deep inside another path is not its prefix');
  t.same(rules.match('/team42/cal/event.ics', 'GET').groups, ['team42'], 'the right one of many');
  t.equal(policy('/HR/SALARIES', 'GET'), 'groups', 'read without case, as Express and IIS route it');
  const deleteTeams = rules.match('/', 'DELETE');
  t.equal(deleteTeams.policy, 'deny', 'a DELETE of / reaches every rule inside it');
  const copyHr = rules.match('/hr', 'COPY');
  t.equal(copyHr.policy, 'groups', 'a COPY of /hr needs what /hr/salaries needs');
  t.same([copyHr.groups, ...copyHr.alsoGroups].flat(), ['hr'], 'and only that');
});
