// The reload step on its own (src/reload.ts): the whole set is validated before any part is
// touched, each part is handed only what changed, and what needs a restart is said so.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/logger.js';
import { createReloader, type ReloadResult } from '../../src/reload.js';

const dir = mkdtempSync(join(tmpdir(), 'sgw-reload-unit-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const SECRET_A = 'a'.repeat(40);
const SECRET_B = 'b'.repeat(40);

function setup() {
  const secretFile = join(dir, 'secret');
  const cssFile = join(dir, 'login.css');
  const dbFile = join(dir, 'database-url');
  writeFileSync(secretFile, SECRET_A);
  writeFileSync(cssFile, 'h1 { color: red; }');
  writeFileSync(dbFile, 'postgres://gw@127.0.0.1:5432/one');
  const env = { GATEWAY_SESSION_SECRET_FILE: secretFile, GATEWAY_LOGIN_CSS_FILE: cssFile, DATABASE_URL_FILE: dbFile, GATEWAY_UPSTREAM: 'http://127.0.0.1:9' };
  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger('info', { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const calls: string[] = [];
  const counted: Array<ReloadResult['outcome']> = [];
  const reloader = createReloader({
    current: loadConfig(env),
    load: () => loadConfig(env),
    logger,
    count: (outcome) => void counted.push(outcome),
    targets: {
      sessionSecrets: (secrets) => void calls.push(`secrets:${secrets.map((s) => s[0]).join(',')}`),
      loginBranding: (branding) => void calls.push(`css:${branding.css}`),
    },
  });
  return { reloader, calls, counted, logs, secretFile, cssFile, dbFile };
}

t.test('nothing changed: nothing replaced, still counted as a success', async (t) => {
  const { reloader, calls, counted } = setup();
  t.same(reloader.reload(), { outcome: 'success', changed: [] });
  t.same(calls, []);
  t.same(counted, ['success']);
});

t.test('only the parts whose files changed are replaced', async (t) => {
  const { reloader, calls, secretFile } = setup();
  writeFileSync(secretFile, `${SECRET_B},${SECRET_A}`);
  t.same(reloader.reload(), { outcome: 'success', changed: ['GATEWAY_SESSION_SECRET'] });
  t.same(calls, ['secrets:b,a']);
  t.same(reloader.reload(), { outcome: 'success', changed: [] }, 'the new set is the one in force now');
});

t.test('any problem: no part is touched, every problem is one line', async (t) => {
  const { reloader, calls, counted, logs, secretFile, cssFile } = setup();
  writeFileSync(secretFile, `${SECRET_B},short`);
  writeFileSync(cssFile, 'h1 { color: blue; } </style><script>');
  const result = reloader.reload();
  t.equal(result.outcome, 'failure');
  t.same(calls, [], 'the valid new secret list is not applied either');
  t.same(counted, ['failure']);
  const lines = logs.filter((l) => l.level === 50).map((l) => l.msg);
  t.same(lines, [
    'configuration reload refused: GATEWAY_SESSION_SECRET: secret #2 is shorter than 32 characters',
    `configuration reload refused: GATEWAY_LOGIN_CSS_FILE: ${cssFile} contains "</style", which would end the page's <style> element`,
    'configuration reload refused: the running configuration stays in force',
  ]);
  t.notOk(JSON.stringify(logs).includes(SECRET_B), 'no secret in the log');
});

t.test('a secret file emptied is refused (start-up would make up a random secret)', async (t) => {
  const { reloader, calls, logs, secretFile } = setup();
  writeFileSync(secretFile, '\n');
  t.equal(reloader.reload().outcome, 'failure');
  t.same(calls, []);
  t.ok(logs.some((l) => l.msg === 'configuration reload refused: GATEWAY_SESSION_SECRET is now empty (its file holds no secret)'));
});

t.test('a connection credential changed: applied at restart, and said so', async (t) => {
  const { reloader, logs, dbFile } = setup();
  writeFileSync(dbFile, 'postgres://gw:new-password@127.0.0.1:5432/one');
  t.same(reloader.reload(), { outcome: 'success', changed: [] });
  t.ok(logs.some((l) => l.level === 40 && l.msg === 'configuration reload: DATABASE_URL changed in its file; it applies at the next restart'));
  t.notOk(JSON.stringify(logs).includes('new-password'), 'the value is not logged');
});
