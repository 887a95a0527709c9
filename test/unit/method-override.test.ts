import t from 'tap';
import { overrideMethods } from '../../src/access/method-override.js';
import { createAccessRules, type AccessRuleSpec } from '../../src/access/rules.js';

t.test('a POST naming another method in its query is read as that method too', async (t) => {
  const read: Array<[string, string[]]> = [
    ['/orders/1?_method=DELETE', ['DELETE']],
    ['/orders/1?_method=delete', ['DELETE']],
    ['/orders/1?x=1&_method=put&y=2', ['PUT']],
    ['/orders/1?%5Fmethod=PATCH', ['PATCH']],
    ['/orders/1?_%6Dethod=DELETE', ['DELETE']],
    ['/orders/1?_m%65thod=DELETE', ['DELETE']],
    ['/orders/1?%5F%6D%65%74%68%6F%64=DELETE', ['DELETE']],
    // PHP turns `.` and spaces in a parameter's name into `_` and drops leading spaces.
    ['/orders/1?.method=DELETE', ['DELETE']],
    ['/orders/1?+_method=DELETE', ['DELETE']],
    ['/orders/1?%20_method=DELETE', ['DELETE']],
    ['/orders/1?_METHOD=DELETE', ['DELETE']],
    ['/orders/1?_method=%44ELETE', ['DELETE']],
    // PHP keeps the last, a Servlet container the first: both are readings.
    ['/orders/1?_method=PUT&_method=DELETE', ['PUT', 'DELETE']],
    ['/orders/1?_method=PUT,DELETE', ['PUT', 'DELETE']],
  ];
  for (const [url, methods] of read) t.same(overrideMethods('POST', url, null), methods, url);
});

t.test('nothing else is an override', async (t) => {
  const none = [
    '/orders/1',
    '/orders/1?',
    '/orders/1?method=DELETE&payment_method=card',
    '/orders/1?%20method=DELETE',
    '/orders/1?_method=',
    '/orders/1?_method=POST',
    '/orders/1?_method=DE LETE',
    '/orders/1?_methods=DELETE',
    '/orders/1#?_method=DELETE',
    '/orders/1?x=1#&_method=DELETE',
  ];
  for (const url of none) t.equal(overrideMethods('POST', url, null), null, url);
  for (const method of ['GET', 'PUT', 'DELETE', 'PROPFIND']) t.equal(overrideMethods(method, '/orders/1?_method=DELETE', null), null, `${method}: only a POST is overridden`);
  t.equal(overrideMethods(null, '/orders/1?_method=DELETE', null), null, 'an unknown method already stands for every method');
});

t.test('override headers count when they reach the app, in every spelling', async (t) => {
  for (const name of ['x-http-method-override', 'x-http-method', 'x-method-override', 'x_http_method_override', 'x-http-method.override']) {
    t.same(overrideMethods('POST', '/orders/1', { [name]: 'delete' }), ['DELETE'], name);
  }
  t.same(overrideMethods('POST', '/orders/1?_method=PUT', { 'x-http-method-override': 'DELETE, PATCH' }), ['PUT', 'DELETE', 'PATCH'], 'query and header together');
  t.same(overrideMethods('POST', '/orders/1', { 'x-http-method-override': ['PUT', 'DELETE'] }), ['PUT', 'DELETE'], 'a header sent twice');
  t.equal(overrideMethods('POST', '/orders/1', { 'x-forwarded-method': 'DELETE' }), null, 'not an override header');
});

t.test('the rules for an override method must allow the POST too', async (t) => {
  const spec = (path: string, methods: string[] | null, policy: AccessRuleSpec['policy'], groups: string[] = []): AccessRuleSpec => ({ path, methods, policy, groups, forwardGroups: null });
  const rules = createAccessRules([], [spec('/orders', ['DELETE'], 'deny'), spec('/orders', ['PUT'], 'groups', ['editors']), spec('/files', ['DELETE'], 'public'), spec('/files/keep', ['DELETE'], 'deny')]);
  t.equal(rules.match('/orders/1', 'POST').policy, 'authenticated', 'control: a plain POST');
  t.equal(rules.match('/orders/1', 'POST', { methods: ['DELETE'] }).policy, 'deny');
  t.same(rules.match('/orders/1', 'POST', { methods: ['PUT'] }).groups, ['editors']);
  t.equal(rules.match('/other', 'POST', { methods: ['DELETE'] }).policy, 'authenticated', 'no rule for DELETE there');
  t.equal(rules.match('/files', 'POST', { methods: ['DELETE'] }).policy, 'deny', 'a DELETE acts on the folder\'s contents too');
});
