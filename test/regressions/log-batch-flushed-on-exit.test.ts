// GATEWAY_LOG_BATCH=true holds one event-loop turn's lines until the turn ends. Whatever ends the
// process through Node (process.exit after the drain, an uncaught exception) must still write
// them: only a kill -9 may lose a turn (docs/configuration.md). The default (one write per line)
// is pinned by log-lines-lost-on-crash.test.ts.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { ROOT, ensureBuilt } from '../helpers/cli.js';

const LINES = 200;

async function run(ending: string): Promise<{ code: number | null; lines: Record<string, unknown>[] }> {
  const logger = pathToFileURL(join(ROOT, 'dist', 'logger.js')).href;
  const script = `
    const { createLogger, requestLoggerFactory } = await import(${JSON.stringify(logger)});
    const log = createLogger('info', undefined, { batchPerTurn: true });
    for (let i = 0; i < ${LINES}; i++) {
      const reqId = 'req-' + i;
      requestLoggerFactory(log, { reqId }, {}).access({ reqId, method: 'GET', path: '/', status: 200, ms: 1, user: 'mallory', ip: '203.0.113.9' });
    }
    log.warn({ audit: 'login', user: 'alice', outcome: 'failure' }, 'login failed');
    ${ending}`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  return { code, lines: stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>) };
}

t.test('every line of the turn is written when the process exits within it', async (t) => {
  await ensureBuilt();
  for (const [ending, code] of [
    ['process.exit(0);', 0],
    ["throw new Error('a fatal bug');", 1],
  ] as const) {
    const result = await run(ending);
    t.equal(result.code, code, ending);
    t.equal(result.lines.filter((e) => e.msg === 'request').length, LINES, `${ending}: every access line`);
    t.ok(result.lines.some((e) => e.audit === 'login'), `${ending}: the audit line`);
  }
});
