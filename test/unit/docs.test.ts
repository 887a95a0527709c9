// The README is the first screen (what, why, the two commands, the walk-through, every variable's
// default); docs/ holds the rest. These checks keep the pages joined up: every relative link and
// anchor resolves, and the README's short configuration table says what docs/configuration.md says.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PAGES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const read = (page: string) => readFileSync(join(ROOT, page), 'utf8');

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors(markdown: string): Set<string> {
  const found = new Set<string>();
  for (const [, title] of markdown.matchAll(/^#{1,6} (.+)$/gm)) found.add((title ?? '').trim().toLowerCase().replace(/[^\w\- ]/g, '').replaceAll(' ', '-'));
  return found;
}

t.test('every relative link and anchor in README.md and docs/ resolves', async (t) => {
  for (const page of PAGES) {
    // Left to right, whichever starts first: a link (its label may hold `code`), or code, skipped.
    for (const [token, , target] of read(page).matchAll(/\[([^\]\n]*)\]\(([^)\s]+)\)|```[\s\S]*?```|`[^`\n]*`/g)) {
      if (!token.startsWith('[') || !target || /^[a-z]+:/.test(target)) continue;
      const [path = '', anchor] = target.split('#');
      const file = path === '' ? join(ROOT, page) : resolve(join(ROOT, dirname(page)), path);
      const name = `${page} → ${target}`;
      t.ok(existsSync(file), `${name}: ${relative(ROOT, file)} exists`);
      if (anchor && file.endsWith('.md') && existsSync(file)) t.ok(anchors(readFileSync(file, 'utf8')).has(anchor), `${name}: the anchor exists`);
    }
  }
});

/** `| `NAME` | … | default |` rows of a Markdown table: name → last cell. */
function defaults(markdown: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of markdown.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const cells = line.slice(1, -1).split(' | ').map((c) => c.trim());
    rows.set(cells[0] ?? '', cells[cells.length - 1] ?? '');
  }
  return rows;
}

t.test("the README's configuration table lists every variable of docs/configuration.md with the same default", async (t) => {
  const readme = read('README.md');
  const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## More'));
  t.same(defaults(section), defaults(read('docs/configuration.md')));
});

t.test('the README stays a first screen', async (t) => {
  t.ok(Buffer.byteLength(read('README.md')) <= 15 * 1024, 'at most 15 KiB; details go to docs/');
  t.ok(read('README.md').split('\n').findIndex((l) => l.startsWith('## Put it in front of your existing app')) < 200, 'the walk-through within the first 200 lines');
});
