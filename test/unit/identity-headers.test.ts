// What the upstream receives, as tables of cases (SPEC section 4).
import t from 'tap';
import type { IncomingHttpHeaders } from 'node:http';
import {
  createRequestHeaderRewriter,
  encodeGroups,
  encodeHeaderValue,
  normaliseHeaderName,
  removeCookies,
  type ForwardingContext,
} from '../../src/identity/headers.js';

t.test('encodeHeaderValue: plain printable ASCII travels as is, anything else is percent-encoded in full', async (t) => {
  const cases: Array<[string, string]> = [
    ['alice', 'alice'],
    ['alice@example.com', 'alice@example.com'],
    ['Alice Smith', 'Alice Smith'],
    ['zoë', '%7A%6F%C3%AB'],
    ['50%', '%35%30%25'],
    ['evil\r\nX-Injected: 1', '%65%76%69%6C%0D%0A%58%2D%49%6E%6A%65%63%74%65%64%3A%20%31'],
    ['tab\there', '%74%61%62%09%68%65%72%65'],
    // Leading/trailing spaces are optional whitespace every HTTP parser strips (RFC 9110 5.5):
    // raw, `alice ` would arrive as `alice`.
    ['alice ', '%61%6C%69%63%65%20'],
    [' alice', '%20%61%6C%69%63%65'],
    [' ', '%20'],
    ['alice\t', '%61%6C%69%63%65%09'],
    ['alice\u00a0', '%61%6C%69%63%65%C2%A0'],
    ['alice\u2003', '%61%6C%69%63%65%E2%80%83'],
    ['\u3000alice', '%E3%80%80%61%6C%69%63%65'],
    ['a b', 'a b'],
    ['', ''],
  ];
  for (const [input, expected] of cases) t.equal(encodeHeaderValue(input), expected, JSON.stringify(input));
  t.equal(decodeURIComponent(encodeHeaderValue('Ünïcødé ✓')), 'Ünïcødé ✓', 'decodes back unambiguously');
});

t.test('encodeGroups: commas inside a group name are encoded so the list splits unambiguously', async (t) => {
  t.equal(encodeGroups(['staff', 'ops']), 'staff,ops');
  t.equal(encodeGroups(['r,d', 'eng']), '%72%2C%64,eng');
  t.equal(encodeGroups([' admins', 'staff']), '%20%61%64%6D%69%6E%73,staff', 'a spaced group cannot become `admins`');
  t.equal(encodeGroups(['staff ', 'Domain Admins']), '%73%74%61%66%66%20,Domain Admins', 'inner spaces travel as they are');
  t.equal(encodeGroups([]), '');
});

t.test('normaliseHeaderName folds case and underscores', async (t) => {
  t.equal(normaliseHeaderName('X_Forwarded_User'), 'x-forwarded-user');
  t.equal(normaliseHeaderName('X-Forwarded.User'), 'x-forwarded-user', 'PHP reads `.` as `_` too');
  t.equal(normaliseHeaderName('x.forwarded_user'), 'x-forwarded-user');
  t.equal(normaliseHeaderName('X~Forwarded!User'), 'x-forwarded-user', 'and any other token character');
  t.equal(normaliseHeaderName('x-forwarded-user'), 'x-forwarded-user');
  t.equal(normaliseHeaderName('REMOTE-USER'), 'remote-user');
});

t.test('removeCookies keeps the app cookies byte for byte', async (t) => {
  const names = new Set(['sgw_session', 'sgw_csrf']);
  const cases: Array<[string, string]> = [
    ['a=1; sgw_session=abc.def; b=x%20y', 'a=1; b=x%20y'],
    ['sgw_session=abc', ''],
    ['sgw_session=abc;sgw_csrf=z', ''],
    ['theme=dark', 'theme=dark'],
    ['a=1;  sgw_session=x ;b=2', 'a=1; b=2'],
    ['xsgw_session=1; sgw_session_old=2', 'xsgw_session=1; sgw_session_old=2'],
  ];
  for (const [input, expected] of cases) t.equal(removeCookies(input, names), expected, input);
});

const context = (overrides: Partial<ForwardingContext> = {}): ForwardingContext => ({
  identity: { user: 'alice', email: 'alice@example.com', groups: ['staff'] },
  peerAddress: '10.0.0.5',
  peerTrusted: false,
  protocol: 'http',
  host: 'app.example.com',
  requestId: 'req-1',
  ...overrides,
});

t.test('the rewriter strips every spelling of every identity header, then injects', async (t) => {
  const rewrite = createRequestHeaderRewriter({
    names: { user: 'Remote-User', email: 'Remote-Email', groups: 'Remote-Groups' },
    cookieNames: ['sgw_session'],
    preserveHost: true,
  });
  const spoofed: IncomingHttpHeaders = {
    'x-forwarded-user': 'mallory',
    x_forwarded_user: 'mallory',
    'x_forwarded-email': 'm@evil',
    'x-forwarded-groups': 'admin',
    'remote-user': 'mallory',
    remote_user: 'mallory',
    'remote_groups': 'admin',
    'x-gateway-identity': 'forged',
    'x_gateway_identity': 'forged',
    authorization: 'Basic abc',
    host: 'upstream.internal:8080',
  };
  const out = rewrite({ ...spoofed }, context());
  t.same(
    Object.keys(out).filter((k) => /user|email|groups|identity/.test(k)).sort(),
    ['remote-email', 'remote-groups', 'remote-user'],
    'only the injected identity headers remain',
  );
  t.equal(out['remote-user'], 'alice');
  t.equal(out['remote-groups'], 'staff');
  t.equal(out.authorization, 'Basic abc', 'Authorization passes through');
  t.equal(out.host, 'app.example.com', 'the client Host is preserved');

  const anonymous = rewrite({ ...spoofed }, context({ identity: null }));
  t.same(Object.keys(anonymous).filter((k) => /user|email|groups|identity/.test(k)), [], 'public paths: all stripped, nothing injected');
});

t.test('X-Forwarded-*: replaced for untrusted peers, appended/kept for trusted ones', async (t) => {
  const rewrite = createRequestHeaderRewriter({ names: { user: 'X-Forwarded-User', email: 'X-Forwarded-Email', groups: 'X-Forwarded-Groups' }, cookieNames: [], preserveHost: false });
  const sent = () => ({ 'x-forwarded-for': '1.2.3.4', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'forged.example', host: 'upstream:1' });
  const untrusted = rewrite(sent(), context());
  t.equal(untrusted['x-forwarded-for'], '10.0.0.5');
  t.equal(untrusted['x-forwarded-proto'], 'http');
  t.equal(untrusted['x-forwarded-host'], 'app.example.com');
  t.equal(untrusted.host, 'upstream:1', 'GATEWAY_PRESERVE_HOST=false leaves the upstream Host');
  const trusted = rewrite(sent(), context({ peerTrusted: true }));
  t.equal(trusted['x-forwarded-for'], '1.2.3.4, 10.0.0.5');
  t.equal(trusted['x-forwarded-proto'], 'https');
  t.equal(trusted['x-forwarded-host'], 'forged.example');
  t.equal(trusted['x-request-id'], 'req-1');
});

t.test('override headers: removed from untrusted peers in every case and underscore spelling, kept from trusted ones', async (t) => {
  const rewrite = createRequestHeaderRewriter({ names: { user: 'X-Forwarded-User', email: 'X-Forwarded-Email', groups: 'X-Forwarded-Groups' }, cookieNames: [], preserveHost: true });
  const names = [
    'Forwarded',
    'X-Real-IP',
    'X-Original-URL',
    'X-Rewrite-URL',
    'X-HTTP-Method-Override',
    'X-HTTP-Method',
    'X-Method-Override',
    'X-Forwarded-Prefix',
    'X-Forwarded-Port',
    'X-Forwarded-Server',
    'X-Client-IP',
    'True-Client-IP',
    'CF-Connecting-IP',
  ];
  const spellings = (name: string) => [name.toLowerCase(), name.toUpperCase(), name.toLowerCase().replaceAll('-', '_'), name.replaceAll('-', '_')];
  for (const name of names) {
    for (const spelling of spellings(name)) {
      const untrusted = rewrite({ host: 'upstream:1', [spelling]: 'forged' }, context());
      t.same(Object.entries(untrusted).filter(([, v]) => v === 'forged'), [], `${spelling}: removed from an untrusted client`);
      const trusted = rewrite({ host: 'upstream:1', [spelling]: 'from-the-balancer' }, context({ peerTrusted: true }));
      t.equal(trusted[spelling], 'from-the-balancer', `${spelling}: kept from a trusted proxy`);
    }
  }
  const sent = { host: 'upstream:1', x_forwarded_for: '6.6.6.6', X_Forwarded_Proto: 'https', 'x_forwarded-host': 'evil.example' };
  const untrusted = rewrite({ ...sent }, context({ identity: null }));
  t.same(
    Object.entries(untrusted).filter(([k]) => k.startsWith('x-forwarded') || k.startsWith('x_') || k.startsWith('X_')),
    [['x-forwarded-for', '10.0.0.5'], ['x-forwarded-proto', 'http'], ['x-forwarded-host', 'app.example.com']],
    'underscore spellings of the X-Forwarded-* trio are removed too; only the gateway\'s own remain',
  );
  t.equal(rewrite({ ...sent }, context({ peerTrusted: true })).x_forwarded_for, '6.6.6.6', 'a trusted proxy\'s headers pass');
});

t.test('leaveOut: names that must not travel, read neither from the copy nor as claims', async (t) => {
  const rewrite = createRequestHeaderRewriter({ names: { user: 'X-Forwarded-User', email: 'X-Forwarded-Email', groups: 'X-Forwarded-Groups' }, cookieNames: ['sgw_session'], preserveHost: false });
  const sent: IncomingHttpHeaders = { host: 'upstream:1', connection: 'x-forwarded-for, cookie, x-app-hop', 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', cookie: 'app=1', 'x-app-hop': '1', accept: '*/*' };
  const before = { ...sent };
  const out = rewrite(sent, context({ peerTrusted: true }), new Set(['connection', 'x-forwarded-for', 'cookie', 'x-app-hop']));
  t.strictSame(sent, before, 'the client\'s headers are not modified');
  t.equal(out.connection, undefined);
  t.equal(out['x-app-hop'], undefined);
  t.equal(out.cookie, undefined, 'a Cookie header named in Connection is not forwarded');
  t.equal(out['x-forwarded-for'], '10.0.0.5', 'a trusted peer\'s X-Forwarded-For named in Connection is not appended to');
  t.equal(out['x-forwarded-proto'], 'https', 'what it did not name is kept');
  t.equal(out.accept, '*/*');
  t.equal(out['x-forwarded-user'], 'alice');
});

t.test('the cookie header: the gateway\'s cookies leave it, the app\'s stay byte for byte, none left means no header', async (t) => {
  const rewrite = createRequestHeaderRewriter({ names: { user: 'X-Forwarded-User', email: 'X-Forwarded-Email', groups: 'X-Forwarded-Groups' }, cookieNames: ['sgw_session', 'sgw_csrf'], preserveHost: false });
  t.equal(rewrite({ cookie: 'sgw_session=abc' }, context()).cookie, undefined);
  t.notOk('cookie' in rewrite({ cookie: 'sgw_session=abc; sgw_csrf=x' }, context()), 'no empty Cookie header');
  t.equal(rewrite({ cookie: 'a=1;  sgw_session=abc; b="2"' }, context()).cookie, 'a=1; b="2"');
  t.equal(rewrite({ cookie: 'a=1;b=2' }, context()).cookie, 'a=1;b=2', 'untouched when none of ours is in it');
});

t.test('only the client\'s own headers are copied: nothing inherited travels upstream', async (t) => {
  const rewrite = createRequestHeaderRewriter({ names: { user: 'X-Forwarded-User', email: 'X-Forwarded-Email', groups: 'X-Forwarded-Groups' }, cookieNames: [], preserveHost: false });
  Object.defineProperty(Object.prototype, 'x-polluted', { value: 'yes', enumerable: true, configurable: true });
  try {
    const out = rewrite({ host: 'upstream:1', accept: '*/*' }, context());
    t.notOk(Object.keys(out).includes('x-polluted'), 'an enumerable property of Object.prototype is not a header');
    t.equal(out.accept, '*/*');
  } finally {
    delete (Object.prototype as Record<string, unknown>)['x-polluted'];
  }
});

t.test('a WebSocket handshake goes through the same rewriter: its override headers go too', async (t) => {
  const rewrite = createRequestHeaderRewriter({ names: { user: 'X-Forwarded-User', email: 'X-Forwarded-Email', groups: 'X-Forwarded-Groups' }, cookieNames: [], preserveHost: true });
  const out = rewrite({ host: 'upstream:1', upgrade: 'websocket', connection: 'Upgrade', 'x-original-url': '/admin', 'x-http-method-override': 'DELETE' }, context());
  t.equal(out['x-original-url'], undefined);
  t.equal(out['x-http-method-override'], undefined);
  t.equal(out.upgrade, 'websocket', 'the handshake itself is untouched');
});
