// The container image built from the real Dockerfile (unchanged) and run with podman: it starts
// as uid 1000, its HEALTHCHECK passes, a login through it reaches the app behind it, it runs with a
// read-only root filesystem, and SIGTERM drains (/readyz turns 503 first) and exits 0 within the
// grace period. The image's size and start time are reported (docs/deploying.md).
// The base image is a local stand-in (test/helpers/containers.ts): no registry is reachable in CI.
import t from 'tap';
import { formLogin, cookieLine } from './lib/stack.js';
import { send } from '../helpers/http.js';
import { freePort } from '../helpers/services.js';
import { buildGatewayImage, containerState, eventually, podman, removeAtTeardown, requirePodman } from '../helpers/containers.js';

const NAME = 'sgw-test-image';
const MB = 1024 * 1024;
// Docker's and podman's default stop timeout: a drain must finish before the SIGKILL.
const GRACE_SECONDS = 10;

// Bounded, but longer than .taprc's 240 s: with an empty cache the stand-ins and the first build
// take minutes (docs/deploying.md, "Tested with real containers").
t.setTimeout(20 * 60_000);
await requirePodman();
const { tag, seconds: buildSeconds } = await buildGatewayImage();
t.comment(`podman build of the Dockerfile: ${buildSeconds.toFixed(1)} s`);

t.test('the image: Docker format with its HEALTHCHECK, non-root user, size reported', async (t) => {
  const inspect = JSON.parse((await podman(['image', 'inspect', tag])).stdout) as Array<{ Size: number; Config: { User: string }; Healthcheck?: { Test: string[] } }>;
  const image = inspect[0];
  if (!image) throw new Error(`no image ${tag}`);
  t.equal(image.Config.User, '1000:1000', 'USER 1000:1000');
  t.match(image.Healthcheck?.Test.join(' ') ?? '', /healthz/, 'the HEALTHCHECK survived the build (Docker format)');
  t.comment(`image size: ${(image.Size / MB).toFixed(0)} MiB (uncompressed, all layers)`);
  t.ok(image.Size > 0);
});

t.test('run: uid 1000, healthy, a login reaches the app, read-only root, SIGTERM drains and exits 0', async (t) => {
  await removeAtTeardown(t, [['container', [NAME]]]);
  const [port, adminPort] = [await freePort(), await freePort()];
  const base = `http://127.0.0.1:${port}`;
  const started = Date.now();
  await podman([
    'run', '--detach', '--name', NAME, '--read-only',
    '--publish', `127.0.0.1:${port}:8000`, '--publish', `127.0.0.1:${adminPort}:9180`,
    // Embedded demo mode (no Redis/PostgreSQL/upstream: the built-in app). Listening on every
    // interface of the container's own network namespace is what makes --publish reach it.
    '--env', 'GATEWAY_HOST=0.0.0.0', '--env', 'GATEWAY_SHUTDOWN_DELAY=2s', '--env', 'GATEWAY_SHUTDOWN_TIMEOUT=5s',
    tag,
  ]);
  await eventually('/healthz answers 200', async () => ((await send(`http://127.0.0.1:${adminPort}/healthz`)).status === 200 ? true : undefined));
  t.comment(`start time (podman run → /healthz 200): ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const uid = await podman(['exec', NAME, 'node', '-p', 'process.getuid() + ":" + process.getgid()']);
  t.equal(uid.stdout.trim(), '1000:1000', 'the gateway runs as uid/gid 1000');
  const top = await podman(['top', NAME, 'user', 'args']);
  t.notMatch(top.stdout, /^\s*root\s/m, 'no process of the container runs as root');

  await eventually('podman healthcheck run passes', async () => ((await podman(['healthcheck', 'run', NAME]).then(() => true, () => false)) ? true : undefined), 60_000);
  t.equal((await containerState(NAME)).Health?.Status, 'healthy', 'podman reports the container healthy');

  const logs = await podman(['logs', NAME]);
  const output = `${logs.stdout}\n${logs.stderr}`;
  const user = /demo user:\s*(\S+)/.exec(output)?.[1];
  const password = /password \(shown once\):\s*(\S+)/.exec(output)?.[1];
  if (!user || !password) throw new Error(`no demo credentials in the container's output: ${output.slice(0, 500)}`);
  // The image has util-linux's chrt, and uid 1000 may lower its own threads' policy: sign-ins yield at once to the proxy.
  t.match(output, /"idle":true,"threads":\d+[^\n]*password hashing threads run at a lower priority/, 'the hashing threads run under SCHED_IDLE in the container');
  const { res, jar } = await formLogin(base, user, password);
  t.equal(res.status, 303, 'the sign-in is accepted');
  const page = await send(`${base}/`, { headers: { cookie: cookieLine(jar), accept: 'text/html' } });
  t.equal(page.status, 200, 'the signed-in request reaches the app behind the gateway');
  t.match(page.body, user, 'and the app sees who signed in');

  const inspect = await podman(['inspect', '--format', '{{.HostConfig.ReadonlyRootfs}}', NAME]);
  t.equal(inspect.stdout.trim(), 'true', 'the root filesystem is read-only');
  const write = await podman(['exec', NAME, 'node', '-e', "require('fs').writeFileSync('/app/dist/x.js', '')"]).then(() => 'written', (e: Error) => e.message);
  t.match(write, /EROFS|read-only/i, 'the gateway cannot rewrite its own code');

  // `podman stop` sends the image's STOPSIGNAL (SIGTERM) and SIGKILLs after the grace period: an
  // exit code of 0 (not 137) means the drain finished by itself within it.
  const stopAt = Date.now();
  const stopping = podman(['stop', '--time', String(GRACE_SECONDS), NAME], (GRACE_SECONDS + 30) * 1000);
  const readyz = await eventually('/readyz turns 503 after SIGTERM', async () => {
    const r = await send(`http://127.0.0.1:${adminPort}/readyz`);
    return r.status === 503 ? r.status : undefined;
  }, 10_000);
  t.equal(readyz, 503, '/readyz answers 503 while draining');
  const during = await send(`${base}/`, { headers: { cookie: cookieLine(jar), accept: 'text/html' } });
  t.equal(during.status, 200, 'requests are still served during GATEWAY_SHUTDOWN_DELAY');
  await stopping;
  const state = await containerState(NAME);
  t.equal(state.Status, 'exited', 'the container stopped');
  t.equal(state.ExitCode, 0, `the process exited 0 by itself within the ${GRACE_SECONDS} s grace period (137 would be SIGKILL)`);
  t.comment(`SIGTERM → exit: ${((Date.now() - stopAt) / 1000).toFixed(1)} s (GATEWAY_SHUTDOWN_DELAY=2s)`);
});
