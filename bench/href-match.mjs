// CPU of judging the hrefs a WebDAV body names (src/access/rules.ts `named`): one `match` of a
// REPORT naming HREF_MATCH_HREFS events (500: the most paths the gateway judges, 250 hrefs read two ways) against 1, 50 and
// 500 rules. The proxy matches them at most twice per request (whether they change the rule, then
// the decision). In process, median of 7 rounds.
//
//   npm run build && node bench/href-match.mjs      # HREF_MATCH_HREFS=500
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const { createAccessRules } = await import(pathToFileURL(join(root, 'dist/access/rules.js')).href);
const HREFS = Number(process.env.HREF_MATCH_HREFS ?? 500);

const named = Array.from({ length: HREFS }, (_, i) => `/calendars/alice/home/${String(i).padStart(32, '0')}.ics`);
for (const count of [1, 50, 500]) {
  const rules = createAccessRules(
    [],
    Array.from({ length: count }, (_, i) => ({ path: `/calendars/team${i}/x.ics`, methods: null, policy: 'groups', groups: ['hr'], forwardGroups: null })),
  );
  const times = [];
  for (let round = 0; round < 8; round++) {
    const started = process.hrtime.bigint();
    rules.match('/calendars/alice/home/', 'REPORT', { named, wholeTree: true });
    if (round > 0) times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  const median = times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
  console.log(`${String(count).padStart(3)} rules: ${median.toFixed(1)} ms per match of ${HREFS} hrefs (${((median * 1000) / HREFS).toFixed(2)} µs per href; rounds ${times.map((x) => x.toFixed(1)).join(', ')})`);
}
