#!/usr/bin/env node
// The format check for every text file in the repository, code or not (the rules .editorconfig
// states for editors): LF line ends, a final newline, no trailing whitespace, and spaces rather
// than tabs, except in the formats that want tabs. TypeScript and JavaScript layout beyond this
// (quotes, semicolons, indentation, spacing) is checked by ESLint's @stylistic rules in `npm run lint`.
// Prints one line per problem (file:line) and exits 1 if there is any.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Formats whose convention is tab indentation (caddy fmt writes tabs). */
const TABS_ALLOWED = [/(^|\/)Caddyfile$/, /(^|\/)Makefile$/, /\.tsv$/];
const BINARY = /\.(png|jpe?g|gif|ico|pdf|woff2?|gz|tgz|zip)$/i;

// Tracked files and new ones not ignored, so a file is checked before its first commit.
const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  .split('\0')
  .filter((f) => f !== '' && !BINARY.test(f));

const problems = [];
let checked = 0;
for (const file of new Set(files)) {
  let bytes;
  try {
    bytes = readFileSync(file);
  } catch {
    continue; // deleted in the work tree, not yet in the index
  }
  if (bytes.includes(0)) continue; // binary
  checked++;
  const text = bytes.toString('utf8');
  if (text.length === 0) continue;
  if (!text.endsWith('\n')) problems.push(`${file}: no newline at the end of the file`);
  const tabsAllowed = TABS_ALLOWED.some((pattern) => pattern.test(file));
  text.split('\n').forEach((line, index) => {
    const where = `${file}:${index + 1}`;
    if (line.endsWith('\r')) problems.push(`${where}: CRLF line end (use LF)`);
    else if (/[ \t]$/.test(line)) problems.push(`${where}: trailing whitespace`);
    if (!tabsAllowed && line.includes('\t')) problems.push(`${where}: tab (indent with spaces)`);
  });
}

for (const problem of problems) console.error(problem);
if (problems.length > 0) {
  console.error(`${problems.length} whitespace problem(s) in ${checked} text files (rules in .editorconfig)`);
  process.exit(1);
}
console.log(`whitespace: ${checked} text files clean`);
