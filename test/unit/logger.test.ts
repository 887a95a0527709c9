// Redaction is defence in depth (SPEC 7): should anything ever log a request's or a response's
// headers, cookies, credentials and the signed identity token come out as [redacted].
import t from 'tap';
import pino from 'pino';
import { createAccessLineWriter, createLogger, loggerOptions, requestLoggerFactory, type AccessLine, type RequestLogger } from '../../src/logger.js';

t.test('secrets in logged requests and responses are redacted', async (t) => {
  const lines: string[] = [];
  const logger = createLogger('info', { write: (line: string) => void lines.push(line) });
  logger.info(
    {
      req: { headers: { cookie: 'sgw_session=abc', authorization: 'Basic dXNlcjpwYXNz', 'x-gateway-identity': 'eyJ.token.sig', 'x-csrf-token': 'tok', accept: 'text/html' } },
      res: { headers: { 'set-cookie': 'sgw_session=abc', 'x-gateway-identity': 'eyJ.token.sig' } },
      password: 'hunter2',
    },
    'request',
  );
  const entry = JSON.parse(lines[0] ?? '{}');
  t.same(entry.req.headers, { cookie: '[redacted]', authorization: '[redacted]', 'x-gateway-identity': '[redacted]', 'x-csrf-token': '[redacted]', accept: 'text/html' });
  t.same(entry.res.headers, { 'set-cookie': '[redacted]', 'x-gateway-identity': '[redacted]' });
  t.equal(entry.password, '[redacted]');
  t.notMatch(lines[0], /abc|dXNlcjpwYXNz|eyJ|hunter2/);
});

t.test('the access line is the same bytes a per-request child would write', async (t) => {
  const viaChild: string[] = [];
  const viaAccess: string[] = [];
  const childLog = createLogger('info', { write: (line: string) => void viaChild.push(line) });
  const accessLog = createLogger('info', { write: (line: string) => void viaAccess.push(line) });
  const fields = { method: 'GET', path: '/a "quoted"\u2028path', status: 200, ms: 1.5, user: null, ip: '::1' };
  childLog.child({ reqId: 'r-1' }).info(fields, 'request');
  (requestLoggerFactory(accessLog, { reqId: 'r-1' }, {}) as unknown as RequestLogger).access({ reqId: 'r-1', ...fields });
  const strip = (line: string | undefined) => String(line).replace(/"time":"[^"]+"/, '"time":"T"');
  t.equal(strip(viaAccess[0]), strip(viaChild[0]));
  const entry = JSON.parse(viaAccess[0] ?? '{}');
  t.match(entry, { level: 30, service: 'session-gateway', reqId: 'r-1', method: 'GET', path: fields.path, status: 200, ms: 1.5, user: null, ip: '::1', msg: 'request' });
  t.match(entry.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'ISO time, as before');
});

t.test('the access line writer writes the bytes pino writes, without calling pino', async (t) => {
  const viaPino: string[] = [];
  const viaWriter: string[] = [];
  const pinoLog = createLogger('info', { write: (line: string) => void viaPino.push(line) });
  const writerLog = createLogger('info', { write: (line: string) => void viaWriter.push(line) });
  const write = createAccessLineWriter(writerLog);
  writerLog.info = () => t.fail('pino\'s info is not called');
  const long = `/${'x'.repeat(60)}"\\`;
  const lines: AccessLine[] = [
    { reqId: 'r-1', method: 'GET', path: '/', status: 200, ms: 0.3, user: 'alice', ip: '127.0.0.1' },
    { reqId: 'a"b\\c', method: 'PROPFIND', path: '/dav/Fichier é ü 日本', status: 207, ms: 12, user: 'Zoë "the" \\ admin', ip: '::ffff:10.0.0.1' },
    { reqId: 'r-3', method: 'POST', path: '/tab\there\nnew\u0001line\u007f', status: 499, ms: 10_000.5, user: null, ip: '::1' },
    { reqId: 'r-4', method: 'GET', path: long, status: 502, ms: Number.NaN, user: long, ip: '192.0.2.1' },
    { reqId: 'r-5', method: 'GET', path: '/\u2028\u2029', status: 200, ms: -0, user: '', ip: undefined as unknown as string },
  ];
  for (const line of lines) {
    pinoLog.info(line, 'request');
    write(line);
  }
  const strip = (line: string | undefined) => String(line).replace(/"time":"[^"]+"/, '"time":"T"');
  t.equal(viaWriter.length, lines.length);
  lines.forEach((line, i) => t.equal(strip(viaWriter[i]), strip(viaPino[i]), line.reqId));
  t.match(JSON.parse(viaWriter[4] ?? '{}'), { msg: 'request', user: '' });
  t.notOk('ip' in JSON.parse(viaWriter[4] ?? '{}'), 'an undefined field is left out, as pino does');
});

t.test('the access line writer leaves a logger that transforms lines to pino', async (t) => {
  const lines: string[] = [];
  const mixed = pino({ ...loggerOptions('info'), mixin: () => ({ zone: 'eu' }) }, { write: (line: string) => void lines.push(line) });
  createAccessLineWriter(mixed)({ reqId: 'r-1', method: 'GET', path: '/', status: 200, ms: 1, user: null, ip: '::1' });
  t.match(JSON.parse(lines[0] ?? '{}'), { zone: 'eu', reqId: 'r-1', msg: 'request' }, 'a mixin still applies');
  const redacting = pino({ ...loggerOptions('info'), redact: ['user'] }, { write: (line: string) => void lines.push(line) });
  createAccessLineWriter(redacting)({ reqId: 'r-2', method: 'GET', path: '/', status: 200, ms: 1, user: 'alice', ip: '::1' });
  t.match(JSON.parse(lines[1] ?? '{}'), { reqId: 'r-2', user: '[Redacted]' }, 'a redaction of one of its fields still applies');
});

t.test('a route logging at warn (forward-auth) writes no access line, but its warnings', async (t) => {
  const lines: string[] = [];
  const logger = createLogger('info', { write: (line: string) => void lines.push(line) });
  const log = requestLoggerFactory(logger, { reqId: 'r-2' }, { level: 'warn' }) as unknown as RequestLogger;
  t.equal(log.level, 'warn');
  t.notOk(log.isLevelEnabled('info'));
  log.access({ reqId: 'r-2', method: 'GET', path: '/', status: 204, ms: 0.1, user: 'alice', ip: '127.0.0.1' });
  t.equal(lines.length, 0);
  log.warn({ reason: 'x' }, 'forward-auth request refused');
  t.match(JSON.parse(lines[0] ?? '{}'), { level: 40, reqId: 'r-2', reason: 'x' });
});

t.test('request.log lines other than the access line carry the request id and are redacted', async (t) => {
  const lines: string[] = [];
  const logger = createLogger('debug', { write: (line: string) => void lines.push(line) });
  const log = requestLoggerFactory(logger, { reqId: 'r-3' }, {});
  log.info({ audit: 'login', user: 'alice', password: 'hunter2' }, 'login succeeded');
  log.debug('plain %s', 'message');
  log.child({ extra: 1 }).error('nested');
  const [a, b, c] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.match(a, { reqId: 'r-3', audit: 'login', password: '[redacted]', msg: 'login succeeded' });
  t.match(b, { reqId: 'r-3', level: 20, msg: 'plain message' });
  t.match(c, { reqId: 'r-3', extra: 1, level: 50, msg: 'nested' });
  t.notMatch(lines.join(''), /hunter2/);
});

t.test('GATEWAY_LOG_BATCH: the lines of one event-loop turn reach the sink as one write, at the turn end', async (t) => {
  const { TurnBatchedDestination } = await import('../../src/logger.js');
  const writes: string[] = [];
  let flushed = 0;
  const destination = new TurnBatchedDestination({ write: (data) => (writes.push(data), true), flushSync: () => void flushed++ });
  const logger = createLogger('info', destination);
  logger.info({ reqId: 'a' }, 'request');
  logger.warn({ audit: 'login', outcome: 'failure' }, 'login failed');
  t.same(writes, [], 'nothing written during the turn');
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(writes.length, 1, 'one write for the turn');
  t.same(writes[0]?.split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { msg: string }).msg), ['request', 'login failed'], 'both lines, in order');
  logger.info({ reqId: 'b' }, 'request');
  destination.flushSync();
  t.equal(writes.length, 2, 'flushSync writes what is pending at once');
  t.equal(flushed, 1);
  destination.flushSync();
  t.equal(writes.length, 2, 'and nothing when nothing is pending');
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(writes.length, 2, 'the turn end finds nothing left');
});
