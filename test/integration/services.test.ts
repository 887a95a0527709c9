// Smoke test for the disposable test servers the other integration tests rely on.
import { Redis } from 'ioredis';
import pg from 'pg';
import t from 'tap';
import { services } from '../helpers/services.js';

const { redis, pg: db } = await services(t);

t.test('postgres answers SELECT 1', async (t) => {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  t.teardown(() => client.end());
  const { rows } = await client.query<{ one: number }>('SELECT 1 AS one');
  t.equal(rows[0]?.one, 1);
});

t.test('redis answers, survives a stop/start on the same port', async (t) => {
  // Unique key: with TEST_REDIS_URL the server is shared with other test files.
  const key = `sgw-test:services:${process.pid}:${Date.now()}`;
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  client.on('error', () => {}); // expected while the server is down
  t.teardown(() => client.disconnect());

  t.equal(await client.ping(), 'PONG');
  await client.set(key, 'v', 'EX', 60);
  t.equal(await client.get(key), 'v');

  if (redis.external) {
    await t.rejects(redis.stop(), /cannot stop an external Redis/);
    return;
  }
  await redis.stop();
  await t.rejects(client.ping(), 'down after stop');
  await redis.start();
  t.equal(await client.ping(), 'PONG', 'answers again after restart');
  t.equal(await client.get(key), null, 'no persistence: restart starts empty');
});
