// Attack: turn the brute-force throttle into a permanent lockout. The throttle's window must always
// end; if a counter in Redis ever loses its expiry, every later failure adds to it forever, and once
// it is over the limit the user (or the whole IP — or, without GATEWAY_TRUSTED_PROXIES, everybody
// behind the load balancer) gets 429 "Retry-After: 1" for good. A counter used to lose its expiry
// whenever its window ended while a login was still verifying and then handed its attempt back
// (DECR on a key that had just expired creates one with no TTL), or ended between SET NX and INCR.
// An attacker can aim for that moment: Retry-After tells them exactly when the window ends.
// Defence: src/login/throttle.ts counts and hands back with one atomic Lua step per counter that
// (re)sets the expiry, and never recreates a counter whose window has ended.
import { hash as bcryptHash } from '@node-rs/bcrypt';
import t from 'tap';
import { jsonLogin, sleep, testBed } from './setup.js';

// bcrypt cost 15 takes well over a second to verify on any current CPU: longer than the 1 s window
// below, so the window of the login's own attempt ends while it is being verified.
const SLOW_PASSWORD = 'slow-Pw-0016';
const bed = await testBed(t, []);
await bed.pool.query('INSERT INTO gateway_users (username, password_hash) VALUES ($1, $2)', ['slow', await bcryptHash(SLOW_PASSWORD, 15)]);
const gw = await bed.gateway({ GATEWAY_LOGIN_WINDOW: '1s', GATEWAY_LOGIN_MAX_ATTEMPTS: '100', GATEWAY_LOGIN_MAX_ATTEMPTS_PER_IP: '2' });

t.test('a window that ends during a login still ends: after Retry-After, the address may try again', async (t) => {
  const started = Date.now();
  const slow = await jsonLogin(gw, { username: 'slow', password: SLOW_PASSWORD });
  t.equal(slow.status, 200, 'a successful login');
  t.ok(Date.now() - started > 1_000, 'that outlasted the throttle window (precondition, not a timing assertion)');

  // Use up this address's budget with failures, until it is refused.
  let refused = null;
  for (let i = 0; i < 6 && !refused; i++) {
    const res = await jsonLogin(gw, { username: `nobody-${i}`, password: 'guess' });
    if (res.status === 429) refused = res;
    else t.equal(res.status, 401, `guess ${i + 1} judged`);
  }
  t.ok(refused, 'the address is throttled after its budget');
  const retryAfter = Number(refused?.headers['retry-after']);
  t.ok(retryAfter >= 1, `Retry-After: ${retryAfter}`);

  await sleep(retryAfter * 1_000 + 500);
  const again = await jsonLogin(gw, { username: 'nobody-again', password: 'guess' });
  t.equal(again.status, 401, 'after waiting as told, the next attempt is judged again, not refused');
});
