// deploy/docker-compose.yml started for real with podman, unchanged: both gateways built from the
// real Dockerfile, each app in its gateway's network namespace, Redis and PostgreSQL (seeded by
// examples/seed.sql through docker-entrypoint-initdb.d) started first and waited for until their
// healthchecks pass. A sign-in on replica 1 is honoured by replica 2.
// - Base images are local stand-ins made from Debian's packages (test/helpers/containers.ts): no
//   registry is reachable in CI. node:24-alpine (the example app's image) is stood in by the
//   Node stand-in: the example app needs only `node`.
// - prometheus and grafana are left out: their images cannot be stood in (the scrape config and
//   dashboards are checked by prometheus.test.ts and grafana.test.ts).
// - The file is run by test/deploy/lib/compose-runner.ts: Debian's podman-compose 1.0.3 cannot run
//   `network_mode: service:…` (see there).
// The published ports are the file's own (127.0.0.1:8000 and :8001): they must be free.
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parse } from 'yaml';
import { send } from '../helpers/http.js';
import { buildGatewayImage, dockerfileBaseImage, ensureNodeImage, ensurePostgresImage, ensureRedisImage, eventually, podman, qualified, removeAtTeardown, requirePodman } from '../helpers/containers.js';
import { composeUp, containerName, type ComposeRun, type ComposeService } from './lib/compose-runner.js';
import { cookieLine, formLogin } from './lib/stack.js';

const deployDir = new URL('../../deploy/', import.meta.url);
const compose = parse(readFileSync(new URL('docker-compose.yml', deployDir), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
const STARTED = ['redis', 'postgres', 'gateway-1', 'app-1', 'gateway-2', 'app-2'];
const image = (service: string) => qualified(compose.services[service]?.image ?? '');

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

// Bounded, but longer than .taprc's 240 s: with an empty cache the stand-ins and the first build
// take minutes (docs/deploying.md, "Tested with real containers").
t.setTimeout(20 * 60_000);
await requirePodman();
for (const port of [8000, 8001]) {
  if (!(await portIsFree(port))) throw new Error(`127.0.0.1:${port} is in use: deploy/docker-compose.yml publishes the gateways there; stop what listens on it`);
}
// The Node chain (rootfs, node stand-in, Dockerfile build) and the services' rootfs at once.
const [{ tag }] = await Promise.all([
  buildGatewayImage().then(async (built) => {
    await ensureNodeImage([await dockerfileBaseImage(), image('app-1'), image('app-2')]);
    return built;
  }),
  ensureRedisImage(image('redis')).then(() => ensurePostgresImage(image('postgres'))),
]);

t.test('the compose stack: a sign-in on replica 1 is honoured by replica 2', async (t) => {
  const run: ComposeRun = { services: compose.services, only: STARTED, projectDir: fileURLToPath(deployDir), prefix: 'sgw-test-compose', builtImage: tag };
  await removeAtTeardown(t, [
    ['container', [...STARTED].reverse().map((s) => containerName(run, s))],
    ['network', [run.prefix]],
  ]);
  const started = Date.now();
  await composeUp(run);

  const replica1 = 'http://127.0.0.1:8000';
  const replica2 = 'http://127.0.0.1:8001';
  for (const url of [replica1, replica2]) {
    await eventually(`${url} redirects to the sign-in page`, async () => ((await send(`${url}/`, { headers: { accept: 'text/html' } })).status === 302 ? true : undefined), 120_000);
  }
  t.comment(`stack up (redis, postgres, 2 gateways, 2 apps): ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const { res, jar } = await formLogin(replica1, 'alice', 'changeme');
  t.equal(res.status, 303, 'alice signs in on replica 1 (plaintext password of the seeded legacy table)');
  const cookie = cookieLine(jar);
  // Each gateway answers 502 until its app listens: the apps start beside the gateways, and the wait
  // above saw only the gateways. (A busy machine once got gateway-2's 502 here.) Wait for the apps.
  for (const url of [replica1, replica2]) {
    await eventually(`the app behind ${url} listening`, async () => ((await send(`${url}/`, { headers: { cookie, accept: 'text/html' } })).status !== 502 ? true : undefined), 60_000);
  }
  const one = await send(`${replica1}/`, { headers: { cookie, accept: 'text/html' } });
  t.equal(one.status, 200);
  t.match(one.body, /alice/, 'replica 1 passes her identity to app-1');
  t.match(one.body, /app-1/, 'app-1 answers behind gateway-1');
  const two = await send(`${replica2}/`, { headers: { cookie, accept: 'text/html' } });
  t.equal(two.status, 200, 'replica 2 honours the session (it lives in Redis)');
  t.match(two.body, /alice/, 'and passes her identity to app-2');
  t.match(two.body, /app-2/, 'app-2 answers behind gateway-2');

  const hash = await podman(['exec', containerName(run, 'postgres'), 'psql', '-U', 'postgres', '-d', 'app', '-tAc', "SELECT pass FROM users WHERE user_id = 'alice'"]);
  t.match(hash.stdout.trim(), /^\$argon2id\$/, "her plaintext password was rehashed through the least-privilege role's UPDATE");

  const app = await podman(['exec', containerName(run, 'app-1'), 'node', '-e', "fetch('http://127.0.0.1:8080/').then(r => console.log(r.status))"]);
  t.equal(app.stdout.trim(), '200', "the app listens on the gateway's loopback, shared through network_mode");
});
