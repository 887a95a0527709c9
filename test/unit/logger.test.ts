// Redaction is defence in depth (SPEC 7): should anything ever log a request's or a response's
// headers, cookies, credentials and the signed identity token come out as [redacted].
import t from 'tap';
import { createLogger } from '../../src/logger.js';

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
