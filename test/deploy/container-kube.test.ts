// deploy/kubernetes/ run for real with `podman kube play`: the sidecar pod (gateway and app in one
// pod, the app on the pod's loopback only), the Secret mounted as files read through the *_FILE
// variables, the probes' endpoints answering, and a sign-in through the gateway reaching the app.
// - kustomize is rendered here as `kubectl apply -k` would for these files: the resources listed
//   in kustomization.yaml, with its `images` overrides. podman runs Pods/Deployments, ConfigMaps and
//   Secrets; the Service, PodDisruptionBudget and ServiceMonitor need a cluster and are left out
//   (kubernetes.test.ts checks them against the API schemas).
// - Then what every user does to a copy of the folder (kustomization.yaml says so), as an overlay
//   in code: real values in the Secret (Redis and PostgreSQL are containers on the pod's network),
//   the public URL, one replica, and the gateway's ports published on 127.0.0.1 (like
//   `kubectl port-forward`). For podman 4.3 (Debian 12): the secret volume's `optional: false`
//   (Kubernetes' default) is written out, and the Secret is put in podman's store by the test
//   (see below) rather than played from the file.
// - podman turns livenessProbe into a healthcheck that runs curl on a named port it cannot
//   resolve; the image has no curl. So the probes are checked by requesting their path and port
//   from the rendered Deployment, as the kubelet would.
// - Images are local stand-ins (test/helpers/containers.ts); the app's image is the example app.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseAllDocuments, parse, stringify } from 'yaml';
import { hashPassword } from '../../src/users/passwords.js';
import { send } from '../helpers/http.js';
import { freePort } from '../helpers/services.js';
import { buildExampleAppImage, buildGatewayImage, ensurePostgresImage, ensureRedisImage, eventually, podman, qualified, removeAtTeardown, requirePodman } from '../helpers/containers.js';
import { cookieLine, formLogin } from './lib/stack.js';

const kubeDir = new URL('../../deploy/kubernetes/', import.meta.url);
const composeFile = parse(readFileSync(new URL('../../deploy/docker-compose.yml', import.meta.url), 'utf8')) as { services: Record<string, { image: string }> };
const PREFIX = 'sgw-test-kube';
const SUPPORTED_KINDS = new Set(['ConfigMap', 'Secret', 'Deployment']);

type Manifest = { kind: string; metadata: { name: string }; [key: string]: unknown };
interface Container {
  name: string;
  image: string;
  env?: Array<{ name: string; value?: string }>;
  ports?: Array<{ name?: string; containerPort: number; hostPort?: number; hostIP?: string }>;
  readinessProbe?: { httpGet: { path: string; port: string | number } };
  livenessProbe?: { httpGet: { path: string; port: string | number } };
}
interface Deployment extends Manifest {
  spec: { replicas: number; template: { spec: { containers: Container[] } } };
}

/** kustomize build, for the features kustomization.yaml uses: resources and images. */
function renderKustomization(): Manifest[] {
  const kustomization = parse(readFileSync(new URL('kustomization.yaml', kubeDir), 'utf8')) as {
    resources: string[];
    images?: Array<{ name: string; newName?: string; newTag?: string }>;
  };
  const unknown = Object.keys(kustomization).filter((k) => !['apiVersion', 'kind', 'resources', 'images'].includes(k));
  if (unknown.length) throw new Error(`kustomization.yaml uses ${unknown.join(', ')}: render it with kustomize`);
  const manifests = kustomization.resources.flatMap((file) => parseAllDocuments(readFileSync(new URL(file, kubeDir), 'utf8')).map((d) => d.toJS() as Manifest));
  for (const m of manifests.filter((m): m is Deployment => m.kind === 'Deployment')) {
    for (const c of m.spec.template.spec.containers) {
      const override = kustomization.images?.find((i) => i.name === c.image.split(':')[0]);
      if (override) c.image = `${override.newName ?? override.name}:${override.newTag ?? 'latest'}`;
    }
  }
  return manifests;
}

// Bounded, but longer than .taprc's 240 s: with an empty cache the stand-ins and the first build
// take minutes (docs/deploying.md, "Tested with real containers").
t.setTimeout(20 * 60_000);
await requirePodman();
const rendered = renderKustomization();
const deployment = rendered.find((m): m is Deployment => m.kind === 'Deployment');
if (!deployment) throw new Error('no Deployment in deploy/kubernetes');
const containers = deployment.spec.template.spec.containers;
const gateway = containers.find((c) => c.name === 'gateway');
const appContainer = containers.find((c) => c.name === 'app');
if (!gateway || !appContainer) throw new Error('the Deployment has no gateway and app containers');

// The same Redis and PostgreSQL images as the compose stack.
const redisImage = qualified(composeFile.services.redis?.image ?? '');
const postgresImage = qualified(composeFile.services.postgres?.image ?? '');
await Promise.all([
  buildGatewayImage().then(async ({ tag }) => {
    await podman(['tag', tag, gateway.image]);
    await buildExampleAppImage(appContainer.image);
  }),
  ensureRedisImage(redisImage).then(() => ensurePostgresImage(postgresImage)),
]);

t.test('the sidecar pod from deploy/kubernetes: probes, Secret files, a sign-in reaches the app', async (t) => {
  const network = PREFIX;
  const [redisName, postgresName] = [`${PREFIX}-redis`, `${PREFIX}-postgres`];
  const podName = `${deployment.metadata.name}-pod-0`;
  // kube play keeps the Secret's files in a volume named after it.
  const secretName = rendered.find((m) => m.kind === 'Secret')?.metadata.name ?? '';
  await removeAtTeardown(t, [
    ['pod', [podName]],
    ['volume', [secretName]],
    ['secret', [secretName]],
    ['container', [redisName, postgresName]],
    ['network', [network]],
  ]);
  await podman(['network', 'create', network]);
  await podman(['run', '--detach', '--name', redisName, '--network', network, redisImage]);
  await podman([
    'run', '--detach', '--name', postgresName, '--network', network,
    '--env', 'POSTGRES_DB=app', '--env', 'POSTGRES_PASSWORD=example-only',
    '--volume', `${new URL('../../deploy/examples/seed.sql', import.meta.url).pathname}:/docker-entrypoint-initdb.d/seed.sql:ro`,
    postgresImage,
  ]);
  await eventually('PostgreSQL seeded and listening', async () => ((await podman(['exec', postgresName, 'pg_isready', '-h', '127.0.0.1', '-U', 'postgres', '-d', 'app']).then(() => true, () => false)) ? true : undefined));
  // configmap.yaml does not allow plaintext passwords: alice's is stored as a hash, as in production.
  await podman(['exec', postgresName, 'psql', '-U', 'postgres', '-d', 'app', '-v', 'ON_ERROR_STOP=1', '-c', `UPDATE users SET pass = '${await hashPassword('changeme')}' WHERE user_id = 'alice'`]);

  // The user's overlay (see the header).
  const [port, adminPort] = [await freePort(), await freePort()];
  const secretValues = {
    'session-secret': 'kube-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz',
    'database-url': `postgres://session_gateway:gateway-demo-password@${postgresName}:5432/app`,
    'redis-url': `redis://${redisName}:6379`,
  };
  const documents = rendered.filter((m) => SUPPORTED_KINDS.has(m.kind)).map((m) => structuredClone(m));
  for (const m of documents) {
    if (m.kind === 'Secret') {
      const data = m.stringData as Record<string, string>;
      t.same(Object.keys(data).sort(), Object.keys(secretValues).sort(), 'the Secret holds the three values the gateway reads from files');
      m.stringData = secretValues;
    }
    if (m.kind === 'ConfigMap') (m.data as Record<string, string>).GATEWAY_PUBLIC_URL = `http://127.0.0.1:${port}`;
    if (m.kind === 'Deployment') {
      const d = m as Deployment;
      d.spec.replicas = 1;
      const gw = d.spec.template.spec.containers.find((c) => c.name === 'gateway');
      for (const p of gw?.ports ?? []) Object.assign(p, { hostIP: '127.0.0.1', hostPort: p.name === 'admin' ? adminPort : port });
      // Kubernetes' default made explicit: podman 4.3 dereferences a missing `optional` (and panics).
      for (const v of (d.spec.template.spec as { volumes?: Array<{ secret?: { optional?: boolean } }> }).volumes ?? []) if (v.secret) v.secret.optional ??= false;
    }
  }
  const dir = await mkdtemp(join(tmpdir(), 'sgw-kube-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'rendered.yaml');
  // podman 4.3 stores a Secret of the played file re-encoded, then mounts its `data` values still
  // base64-encoded (and ignores stringData). So the Secret goes to podman's store directly, its
  // values in `data` as plain text, the form that version's secret volumes read back as is.
  const secret = documents.find((m) => m.kind === 'Secret');
  if (!secret) throw new Error('no Secret in deploy/kubernetes');
  const secretFile = join(dir, 'secret.yaml');
  await writeFile(secretFile, stringify({ apiVersion: 'v1', kind: 'Secret', metadata: secret.metadata, data: secret.stringData }), { mode: 0o600 });
  await podman(['secret', 'create', secretName, secretFile]);
  await writeFile(file, documents.filter((d) => d !== secret).map((d) => stringify(d)).join('---\n'));
  t.teardown(() => podman(['kube', 'down', file]).catch(() => undefined));

  const started = Date.now();
  const play = await podman(['kube', 'play', '--network', network, file], 180_000);
  t.comment(play.stdout.trim().split('\n').join(' | '));
  const base = `http://127.0.0.1:${port}`;
  await eventually('the gateway answers through the pod', async () => ((await send(`${base}/`, { headers: { accept: 'text/html' } })).status === 302 ? true : undefined), 120_000).catch(async (error: Error) => {
    const logs = await podman(['logs', '--tail', '5', `${podName}-gateway`]).catch((e: Error) => ({ stdout: '', stderr: e.message }));
    const ps = await podman(['ps', '-a', '--pod', '--format', '{{.Names}} {{.Status}} {{.Ports}}']).catch(() => ({ stdout: '' }));
    throw new Error(`${error.message}\ngateway log: ${logs.stdout}${logs.stderr}\ncontainers: ${ps.stdout}`);
  });
  t.comment(`pod up (podman kube play → sign-in page): ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const portOf = (probePort: string | number) => {
    const containerPort = typeof probePort === 'number' ? probePort : gateway.ports?.find((p) => p.name === probePort)?.containerPort;
    return containerPort === gateway.ports?.find((p) => p.name === 'admin')?.containerPort ? adminPort : port;
  };
  for (const probe of [gateway.readinessProbe, gateway.livenessProbe]) {
    if (!probe) continue;
    const res = await eventually(`${probe.httpGet.path} answers 200`, async () => {
      const r = await send(`http://127.0.0.1:${portOf(probe.httpGet.port)}${probe.httpGet.path}`);
      return r.status === 200 ? r : undefined;
    });
    t.equal(res.status, 200, `the probe's ${probe.httpGet.path} on port ${probe.httpGet.port} answers 200`);
  }

  const gatewayContainer = `${podName}-gateway`;
  const env = (await podman(['exec', gatewayContainer, 'node', '-p', 'JSON.stringify(process.env)'])).stdout;
  for (const value of Object.values(secretValues)) t.notOk(env.includes(value), "a secret value is not in the gateway's environment");
  for (const variable of ['GATEWAY_SESSION_SECRET_FILE', 'DATABASE_URL_FILE', 'REDIS_URL_FILE']) t.match(env, variable, `${variable} points at the mounted Secret`);
  const mounted = await podman(['exec', gatewayContainer, 'node', '-p', "require('fs').readFileSync(process.env.REDIS_URL_FILE, 'utf8')"]);
  t.equal(mounted.stdout.trim(), secretValues['redis-url'], 'the gateway (uid 1000) can read the Secret file');

  const { res, jar } = await formLogin(base, 'alice', 'changeme');
  t.equal(res.status, 303, 'alice signs in through the pod');
  const page = await send(`${base}/`, { headers: { cookie: cookieLine(jar), accept: 'text/html' } });
  t.equal(page.status, 200, 'the signed-in request reaches the app container');
  t.match(page.body, /alice/, 'which sees her identity');

  const appOnly = await podman(['exec', gatewayContainer, 'node', '-e', "fetch('http://127.0.0.1:8080/').then(r => console.log(r.status))"]);
  t.equal(appOnly.stdout.trim(), '200', "the app listens on the pod's loopback, beside the gateway");
});
