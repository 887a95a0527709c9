// The access decision alone, in process: how long one `gate.decide` takes for a proxied request the
// local session cache answers (an authenticator that answers at once stands in for it), for each
// build named. Whole-process comparisons (paired.mjs) cannot see a change of a few nanoseconds
// through their noise of several microseconds; this can. Builds alternate, five rounds each.
//
//   npm run build && node bench/gate-decide.mjs [dist dir …]
//   node bench/gate-decide.mjs dist /path/to/other/checkout/dist
//   GATE_PATH=/static/app.js GATE_RULES=true node bench/gate-decide.mjs dist   # a path with readings, against rules
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const dists = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['dist'];
const path = process.env.GATE_PATH ?? '/';
const withRules = process.env.GATE_RULES === 'true';
const ITERATIONS = 2_000_000;
const ROUNDS = 5;

const principal = { kind: 'session', idHash: 'x', record: { user: 'bob', email: null, groups: ['staff'] }, session: null, ambient: true };
const authenticators = [{ kind: 'session', presented: () => true, authenticate: () => ({ outcome: 'valid', principal }) }];
const rules = withRules
  ? [
    { path: '/admin', methods: null, policy: 'groups', groups: ['admins'], forwardGroups: null },
    { path: '/orders', methods: ['DELETE'], policy: 'deny', groups: [], forwardGroups: null },
  ]
  : [];

const gates = [];
for (const dist of dists) {
  const { createGate } = await import(pathToFileURL(resolve(dist, 'access', 'gate.js')).href);
  gates.push({ dist, gate: createGate({ publicPaths: withRules ? ['/public'] : [], rules, logoutPaths: withRules ? ['/logout'] : [], authenticators }), ns: [] });
}
const credentials = { cookies: {}, headers: {} };
let allowed = 0;
for (let round = 0; round < ROUNDS; round++) {
  for (const entry of gates) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < ITERATIONS; i++) {
      const verdict = entry.gate.decide({ path, method: 'GET', destination: undefined, routed: undefined, methods: undefined, credentials, logout: true });
      if (verdict.kind === 'allow') allowed++;
    }
    entry.ns.push(Number(process.hrtime.bigint() - started) / ITERATIONS);
  }
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
console.log(`gate.decide for GET ${path}${withRules ? ' with rules' : ''}, ${ITERATIONS} calls per round, ${ROUNDS} rounds (${allowed} allowed)`);
for (const { dist, ns } of gates) console.log(`${dist}: median ${median(ns).toFixed(1)} ns per decision; rounds ${ns.map((n) => n.toFixed(1)).join(', ')}`);
