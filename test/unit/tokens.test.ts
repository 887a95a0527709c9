// Small tables for the token and Basic pieces that need no store: token shape, Basic parsing,
// the configuration of GATEWAY_BASIC_AUTH(_CACHE).
import t from 'tap';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { parseBasicCredentials } from '../../src/tokens/basic.js';
import { hashToken, isGatewayToken, isWellFormedToken, newToken, tokenNameProblem } from '../../src/tokens/token.js';
import { parseMessage } from '../../src/tokens/invalidation.js';

t.test('tokens: shape, uniqueness, hash', async (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < 100; i++) {
    const token = newToken();
    t.ok(isWellFormedToken(token) && isGatewayToken(token));
    seen.add(token);
  }
  t.equal(seen.size, 100);
  t.notOk(isWellFormedToken('sgw_pat_' + 'A'.repeat(42)));
  t.notOk(isWellFormedToken('sgw_pat_' + 'A'.repeat(42) + '='));
  t.notOk(isWellFormedToken('xgw_pat_' + 'A'.repeat(43)));
  t.equal(hashToken('sgw_pat_x'), hashToken('sgw_pat_x'));
  t.not(hashToken('sgw_pat_x'), hashToken('sgw_pat_y'));
  t.equal(tokenNameProblem('ci-deploy.v2_x'), null);
  for (const bad of ['', ' ci', 'a b', '-x', 'x'.repeat(65), 'é']) t.ok(tokenNameProblem(bad), JSON.stringify(bad));
});

t.test('Basic credentials', async (t) => {
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  t.same(parseBasicCredentials(b64('alice:pw')), { user: 'alice', password: 'pw' });
  t.same(parseBasicCredentials(b64('alice:pw:with:colons')), { user: 'alice', password: 'pw:with:colons' });
  t.same(parseBasicCredentials(b64('jürgen:pässwort')), { user: 'jürgen', password: 'pässwort' }, 'UTF-8 (RFC 7617 charset)');
  for (const bad of ['', '!!!', b64('nocolon'), b64(':pw'), b64('alice:'), b64(`alice:${'x'.repeat(5000)}`), b64(`${'u'.repeat(300)}:pw`)]) {
    t.equal(parseBasicCredentials(bad), null, bad.slice(0, 20));
  }
});

t.test('invalidation messages', async (t) => {
  t.same(parseMessage('t:abc'), { kind: 'token', tokenHash: 'abc' });
  t.same(parseMessage('u:alice'), { kind: 'user', user: 'alice' });
  t.equal(parseMessage('Zm9vYmFyYmF6cXV4MTIzNDU2'), null, 'a session id hash is not ours');
});

t.test('GATEWAY_BASIC_AUTH and GATEWAY_BASIC_AUTH_CACHE', async (t) => {
  const defaults = loadConfig({});
  t.equal(defaults.basicAuth, false);
  t.equal(defaults.basicAuthCacheMs, 300_000);
  const on = loadConfig({ GATEWAY_BASIC_AUTH: 'true', GATEWAY_BASIC_AUTH_CACHE: '90s' });
  t.equal(on.basicAuth, true);
  t.equal(on.basicAuthCacheMs, 90_000);
  t.equal(loadConfig({ GATEWAY_BASIC_AUTH_CACHE: '0' }).basicAuthCacheMs, 0, '0: hash on every request');
  try {
    loadConfig({ GATEWAY_BASIC_AUTH: 'maybe', GATEWAY_BASIC_AUTH_CACHE: 'forever' });
    t.fail('should not load');
  } catch (err) {
    t.ok(err instanceof ConfigError);
    const problems = (err as ConfigError).problems;
    t.ok(problems.some((p) => p.startsWith('GATEWAY_BASIC_AUTH must be true or false')), problems.join('\n'));
    t.ok(problems.some((p) => p.startsWith('GATEWAY_BASIC_AUTH_CACHE must be a duration')), problems.join('\n'));
  }
});

t.test('the Basic cache key is a real HMAC-SHA256', async (t) => {
  const { createHmac, randomBytes } = await import('node:crypto');
  const { createHmacSha256 } = await import('../../src/tokens/basic.js');
  const key = Buffer.from(randomBytes(64).map((b) => b & 0x7f));
  const hmac = createHmacSha256(key);
  for (const text of ['', 'YWxpY2U6cHc=', 'x'.repeat(5000)]) t.equal(hmac(text), createHmac('sha256', key).update(text).digest('base64url'));
  t.throws(() => createHmacSha256(Buffer.alloc(64, 0x80)));
  t.throws(() => createHmacSha256(Buffer.alloc(32)));
});
