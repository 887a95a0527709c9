// Erasing the evidence by crashing the gateway (A1): an attacker who can make the process die
// (an OOM kill, a fatal bug) right after a burst of requests must not take their access and
// audit lines with it (SPEC 7: one line per request, an audit line per login). The gateway's
// logger writes each line to standard output before the call returns; pino's default
// asynchronous stdout kept every line after the first in memory until the event loop turned.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { ROOT, ensureBuilt } from '../helpers/cli.js';

const LINES = 200;

t.test('every line logged before a SIGKILL is on standard output', async (t) => {
  await ensureBuilt();
  const logger = pathToFileURL(join(ROOT, 'dist', 'logger.js')).href;
  // The real logger and request logger, as the server builds them; the process kills itself
  // right after the last call, before its event loop turns again.
  const script = `
    const { createLogger, requestLoggerFactory } = await import(${JSON.stringify(logger)});
    const log = createLogger('info');
    for (let i = 0; i < ${LINES}; i++) {
      const reqId = 'req-' + i;
      requestLoggerFactory(log, { reqId }, {}).access({ reqId, method: 'GET', path: '/admin', status: 200, ms: 1, user: 'mallory', ip: '203.0.113.9' });
    }
    log.warn({ audit: 'login', user: 'alice', ip: '203.0.113.9', outcome: 'failure' }, 'login failed');
    process.kill(process.pid, 'SIGKILL');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const signal = await new Promise((resolve) => child.on('close', (_code, sig) => resolve(sig)));
  t.equal(signal, 'SIGKILL');
  const entries = stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
  const access = entries.filter((e) => e.msg === 'request');
  t.equal(access.length, LINES, 'one access line per request, none lost');
  t.same(access.map((e) => e.reqId), Array.from({ length: LINES }, (_, i) => `req-${i}`), 'in order');
  t.match(access[0], { method: 'GET', path: '/admin', status: 200, user: 'mallory', ip: '203.0.113.9' });
  t.ok(entries.some((e) => e.audit === 'login' && e.outcome === 'failure'), 'the audit line too');
});
