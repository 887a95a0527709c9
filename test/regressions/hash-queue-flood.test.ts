// Attack: keep real users from signing in by flooding the login with parallel attempts. Hashing
// is capped at cores − 1 at a time, but the queue in front of it was unbounded: 4 addresses × 50
// parallel attempts put 200 argon2id hashes ahead of every real login (84 ms → 3.8 s), and more
// addresses or more attempts made it as long as the attacker liked.
// Defence: src/users/concurrency.ts bounds the hashing queue in length and waiting time, and
// src/login/routes.ts lets one address have only a few sign-ins in flight: the rest of a flood is
// answered `503` with `Retry-After` at once (no hash, no store call), counted as `throttled`, and a
// real login from another address finds a short queue. (The latency is measured by
// bench/login-flood.mjs; this test asserts outcomes only.)
import { request as httpRequest } from 'node:http';
import t from 'tap';
import type { TestGateway } from '../helpers/gateway.js';
import { scrapeMetric } from '../helpers/metrics.js';
import { testBed } from './setup.js';

const bed = await testBed(t, [{ username: 'ann', password: 'ann-Pw-Right-0021' }]);
const gw = await bed.gateway();

/** A JSON login from a chosen loopback address (127.0.0.2 … are all this host on Linux). */
function loginFrom(gateway: TestGateway, localAddress: string, body: unknown): Promise<{ status: number; retryAfter: string | undefined; body: string }> {
  const { hostname, port } = new URL(gateway.url);
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: hostname, port, localAddress, method: 'POST', path: '/_auth/login', agent: false, headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

t.test('a flood from 4 addresses is shed with 503/429, and a real login from elsewhere succeeds', async (t) => {
  const throttledBefore = await scrapeMetric(gw.adminUrl, 'gateway_logins_total', { outcome: 'throttled' });
  const flood = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'].flatMap((address) =>
    Array.from({ length: 50 }, (_, i) => loginFrom(gw, address, { username: `spray-${address}-${i}`, password: 'wrong' })),
  );
  const real = loginFrom(gw, '127.0.0.1', { username: 'ann', password: 'ann-Pw-Right-0021' });
  const answers = await Promise.all(flood);
  const realAnswer = await real;

  t.equal(realAnswer.status, 200, `the real user is signed in: ${realAnswer.body}`);
  const byStatus = new Map<number, number>();
  for (const a of answers) byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
  t.comment(`flood answers: ${JSON.stringify(Object.fromEntries(byStatus))}`);
  t.same([...byStatus.keys()].filter((s) => ![401, 429, 503].includes(s)), [], 'only 401, 429 and 503: nothing else, no error');
  const shed = answers.filter((a) => a.status === 503 || a.status === 429);
  t.ok(shed.length >= 150, `most of the flood is refused without a hash (${shed.length} of 200)`);
  t.ok(shed.every((a) => /^[1-9]\d*$/.test(a.retryAfter ?? '')), 'every refusal says when to retry');
  const busy = answers.find((a) => a.status === 503);
  t.match(busy?.body ?? '', /Too many sign-ins at once/, 'a clear message');
  t.ok((await scrapeMetric(gw.adminUrl, 'gateway_logins_total', { outcome: 'throttled' })) - throttledBefore >= shed.length, 'counted as throttled logins');
  t.equal(await scrapeMetric(gw.adminUrl, 'gateway_logins_total', { outcome: 'error' }), 0, 'never as errors');
});

t.test('once the flood is over the same addresses are served again', async (t) => {
  const res = await loginFrom(gw, '127.0.0.2', { username: 'ann', password: 'ann-Pw-Right-0021' });
  t.not(res.status, 503, 'nothing stays stuck in flight');
});
