// deploy/kubernetes, checked without a cluster: every resource the kustomization lists exists and
// validates against the Kubernetes OpenAPI schemas (kubernetes-models; prometheus-operator's for the
// ServiceMonitor), and the manifests agree with each other and with the gateway: probes on the admin
// port, a grace period that covers the drain, the Service on the gateway port, the app on loopback,
// and a configuration loadConfig accepts once the placeholder secret is replaced.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IService } from 'kubernetes-models/v1/Service';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { parseDurationMs } from '../../src/config/duration.js';

const dir = new URL('../../deploy/kubernetes/', import.meta.url);
const read = (file: string) => readFileSync(new URL(file, dir), 'utf8');

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}
const kustomization = parseAllDocuments(read('kustomization.yaml'))[0]?.toJS() as {
  apiVersion: string;
  kind: string;
  resources: string[];
  images: Array<{ name: string; newName?: string; newTag?: string }>;
};
const manifests: Array<Manifest & { file: string }> = kustomization.resources.flatMap((file) =>
  parseAllDocuments(read(file)).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return { ...(doc.toJS() as Manifest), file };
  }),
);
const only = <T>(kind: string, name?: string): T & Manifest => {
  const found = manifests.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0] as unknown as T & Manifest;
};

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
};

const deployment = only<IDeployment>('Deployment');
const pod = deployment.spec?.template.spec;
const container = (name: string): IContainer => {
  const c = pod?.containers.find((x) => x.name === name);
  if (!c) throw new Error(`no container ${name} in the Deployment`);
  return c;
};
const gateway = container('gateway');
const app = container('app');
const configMap = only<{ data: Record<string, string> }>('ConfigMap', gateway.envFrom?.[0]?.configMapRef?.name);
const secret = only<{ stringData: Record<string, string> }>('Secret');

/** The gateway's environment: envFrom the ConfigMap, then env (literal values and _FILE paths). */
function gatewayEnv(): Record<string, string> {
  const env: Record<string, string> = { ...configMap.data };
  for (const e of gateway.env ?? []) {
    if (e.value === undefined) throw new Error(`${e.name}: only literal values are expected (secrets come as files)`);
    env[e.name] = e.value;
  }
  return env;
}

/** Writes the Secret's values where the pod would see them and returns the env pointing at them. */
function withMountedSecret(t: { teardown(fn: () => void): void }, overrides: Record<string, string> = {}): Record<string, string> {
  const mount = gateway.volumeMounts?.find((m) => pod?.volumes?.find((v) => v.name === m.name)?.secret);
  if (!mount) throw new Error('the gateway mounts no Secret volume');
  const local = mkdtempSync(join(tmpdir(), 'sgw-k8s-secret-'));
  t.teardown(() => rmSync(local, { recursive: true, force: true }));
  for (const [key, value] of Object.entries({ ...secret.stringData, ...overrides })) writeFileSync(join(local, key), value);
  const env = gatewayEnv();
  for (const [name, value] of Object.entries(env)) {
    if (name.endsWith('_FILE') && value.startsWith(`${mount.mountPath}/`)) env[name] = join(local, posix.relative(mount.mountPath, value));
  }
  return env;
}

const seconds = (text: string | undefined) => (parseDurationMs(text ?? '0') ?? NaN) / 1000;

t.test('kustomization lists resources that exist, and every container image is set through it', async (t) => {
  t.equal(kustomization.apiVersion, 'kustomize.config.k8s.io/v1beta1');
  t.equal(kustomization.kind, 'Kustomization');
  t.ok(kustomization.resources.length >= 6, 'lists the resources');
  const kinds = manifests.map((m) => m.kind).sort();
  t.same(kinds, ['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Secret', 'Service', 'Service', 'ServiceMonitor']);
  const images = new Set(kustomization.images.map((i) => i.name));
  for (const c of pod?.containers ?? []) t.ok(images.has(c.image ?? ''), `${c.name}'s image ${c.image} is set in kustomization images`);
});

t.test('every manifest validates against the Kubernetes schemas', async (t) => {
  for (const m of manifests) {
    const Model = MODELS[`${m.apiVersion}/${m.kind}`];
    t.ok(Model, `${m.file}: a schema for ${m.apiVersion} ${m.kind}`);
    if (!Model) continue;
    const { file: _file, ...data } = m;
    t.doesNotThrow(() => new Model(data as never).validate(), `${m.file}: ${m.kind} ${m.metadata.name} is valid`);
  }
  // The validator really rejects what a typo would produce.
  const broken = structuredClone(deployment) as unknown as { spec: { template: { spec: { containers: Array<{ ports: Array<{ containerPort: unknown }> }> } } } };
  (broken.spec.template.spec.containers[0] as { ports: Array<{ containerPort: unknown }> }).ports[0] = { containerPort: '8000' };
  t.throws(() => new Deployment(broken as never).validate(), 'a string port is rejected');
});

t.test('the gateway is a sidecar: the app listens on loopback and only the gateway is reachable', async (t) => {
  const config = loadConfig(withMountedSecret(t, { 'session-secret': 'x'.repeat(48) }));
  for (const cidr of config.trustedProxyCidrs) {
    t.ok(Number(cidr.split('/')[1] ?? 32) >= 24, `${cidr}: only the load balancer's range, never the cluster's (any pod could forge X-Forwarded-For)`);
  }
  t.equal(config.upstream?.hostname, '127.0.0.1', 'the gateway forwards to the pod loopback');
  t.same(
    (app.env ?? []).filter((e) => ['HOST', 'PORT'].includes(e.name)).map((e) => [e.name, e.value]),
    [['HOST', '127.0.0.1'], ['PORT', config.upstream?.port]],
    'the app binds 127.0.0.1 on the port the gateway forwards to',
  );
  t.notOk(app.ports, 'the app declares no container port');
  const http = gateway.ports?.find((p) => p.name === 'http');
  t.equal(http?.containerPort, config.port, 'the gateway http port is GATEWAY_PORT');

  const services = manifests.filter((m) => m.kind === 'Service') as unknown as IService[];
  const labels = deployment.spec?.template.metadata?.labels ?? {};
  for (const s of services) {
    const selector = s.spec?.selector ?? {};
    t.ok(Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v), `${s.metadata?.name} selects the pods`);
  }
  const main = services.find((s) => s.metadata?.name === deployment.metadata.name);
  t.ok(main, 'a Service named after the app');
  for (const p of main?.spec?.ports ?? []) {
    const target = typeof p.targetPort === 'string' ? gateway.ports?.find((x) => x.name === p.targetPort)?.containerPort : p.targetPort;
    t.equal(target, config.port, `Service port ${p.port} targets the gateway proxy port`);
  }
  const selector = deployment.spec?.selector.matchLabels ?? {};
  t.ok(Object.entries(selector).every(([k, v]) => labels[k] === v), 'the Deployment selector matches its pods');
});

t.test('probes, scrape annotations and the ServiceMonitor all use the admin port', async (t) => {
  const config = loadConfig(withMountedSecret(t, { 'session-secret': 'x'.repeat(48) }));
  const portOf = (p: string | number | undefined) => (typeof p === 'string' ? gateway.ports?.find((x) => x.name === p)?.containerPort : p);
  t.equal(gateway.livenessProbe?.httpGet?.path, '/healthz', 'liveness on /healthz');
  t.equal(gateway.readinessProbe?.httpGet?.path, '/readyz', 'readiness on /readyz (Redis down or draining → out of the Service)');
  t.equal(portOf(gateway.livenessProbe?.httpGet?.port), config.adminPort, 'liveness on GATEWAY_ADMIN_PORT');
  t.equal(portOf(gateway.readinessProbe?.httpGet?.port), config.adminPort, 'readiness on GATEWAY_ADMIN_PORT');
  const annotations = deployment.spec?.template.metadata?.annotations ?? {};
  t.equal(annotations['prometheus.io/scrape'], 'true');
  t.equal(Number(annotations['prometheus.io/port']), config.adminPort, 'prometheus.io/port is the admin port');
  t.equal(annotations['prometheus.io/path'], '/metrics');

  const monitor = only<{ spec: { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string; path?: string }> } }>('ServiceMonitor');
  const selected = (manifests.filter((m) => m.kind === 'Service') as unknown as IService[]).filter((s) =>
    Object.entries(monitor.spec.selector.matchLabels).every(([k, v]) => s.metadata?.labels?.[k] === v),
  );
  t.equal(selected.length, 1, 'the ServiceMonitor selects exactly the metrics Service');
  for (const e of monitor.spec.endpoints) {
    const servicePort = selected[0]?.spec?.ports?.find((p) => p.name === e.port);
    t.ok(servicePort, `endpoint port ${e.port} is a named port of that Service`);
    t.equal(portOf(servicePort?.targetPort), config.adminPort, 'and leads to the admin port');
    t.equal(e.path ?? '/metrics', '/metrics');
  }
});

t.test('shutdown: the app outlives the gateway drain and the grace period covers both', async (t) => {
  const env = gatewayEnv();
  const drain = seconds(env.GATEWAY_SHUTDOWN_DELAY) + seconds(env.GATEWAY_SHUTDOWN_TIMEOUT ?? '25s');
  t.ok(seconds(env.GATEWAY_SHUTDOWN_DELAY) > 0, 'a shutdown delay lets endpoint removal propagate before the listener closes');
  const grace = pod?.terminationGracePeriodSeconds ?? 30;
  const preStop = app.lifecycle?.preStop;
  const sleep = preStop?.sleep?.seconds ?? Number(preStop?.exec?.command?.join(' ').match(/sleep (\d+)/)?.[1] ?? 0);
  t.ok(sleep >= drain, `app preStop (${sleep} s) ≥ GATEWAY_SHUTDOWN_DELAY + GATEWAY_SHUTDOWN_TIMEOUT (${drain} s)`);
  t.ok(grace >= drain, `terminationGracePeriodSeconds (${grace}) ≥ delay + timeout (${drain})`);
  t.ok(grace > sleep, 'and leaves the app time to exit after its preStop');
  t.notOk(gateway.lifecycle?.preStop, 'the gateway needs no preStop: GATEWAY_SHUTDOWN_DELAY does it');
});

t.test('secrets come from the Secret as files, and the configuration is complete but for the placeholder', async (t) => {
  const env = gatewayEnv();
  for (const name of ['GATEWAY_SESSION_SECRET', 'DATABASE_URL', 'REDIS_URL']) {
    t.notOk(env[name], `${name} is not a literal in the pod spec`);
    const key = posix.basename(env[`${name}_FILE`] ?? '');
    t.ok(key && secret.stringData[key] !== undefined, `${name}_FILE names a key of the Secret (${key})`);
  }
  t.equal(pod?.volumes?.find((v) => v.secret)?.secret?.secretName, secret.metadata.name, 'the mounted volume is that Secret');
  for (const name of Object.keys(env)) {
    if (/^(GATEWAY_|REDIS_|DATABASE_URL|LOG_LEVEL)/.test(name)) t.ok(readFileSync(new URL('../../src/config/config.ts', import.meta.url), 'utf8').includes(`'${name.replace(/_FILE$/, '')}'`), `${name} is read by src/config/config.ts`);
  }
  let problems: string[] = [];
  try {
    loadConfig(withMountedSecret(t));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems = err.problems;
  }
  t.same(problems, ['GATEWAY_SESSION_SECRET: secret #1 is shorter than 32 characters'], 'as shipped, only the placeholder secret is refused: it cannot reach production by mistake');
});

t.test('resources, security context and disruption budget', async (t) => {
  for (const c of pod?.containers ?? []) {
    t.ok(c.resources?.requests?.cpu && c.resources.requests.memory, `${c.name} requests cpu and memory`);
    t.equal(c.securityContext?.allowPrivilegeEscalation, false, `${c.name} cannot escalate privileges`);
  }
  t.equal(gateway.securityContext?.runAsNonRoot, true, 'the gateway runs as non-root');
  const dockerUser = /^USER\s+(\d+)/m.exec(readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8'))?.[1];
  t.equal(String(gateway.securityContext?.runAsUser), dockerUser, 'the gateway runs as the Dockerfile USER');
  t.equal(gateway.securityContext?.readOnlyRootFilesystem, true, 'the gateway needs no writable filesystem');
  t.equal(pod?.automountServiceAccountToken, false, 'no Kubernetes API token in the pod');

  const pdb = only<{ spec: { maxUnavailable?: number; minAvailable?: number; selector: { matchLabels: Record<string, string> } } }>('PodDisruptionBudget');
  const labels = deployment.spec?.template.metadata?.labels ?? {};
  t.ok(Object.entries(pdb.spec.selector.matchLabels).every(([k, v]) => labels[k] === v), 'the PDB selects the pods');
  const replicas = deployment.spec?.replicas ?? 1;
  const allowed = pdb.spec.maxUnavailable ?? replicas - (pdb.spec.minAvailable ?? 0);
  t.ok(allowed >= 1 && allowed < replicas, `evictions allowed (${allowed}) but never all ${replicas} at once`);
  t.equal(deployment.spec?.strategy?.rollingUpdate?.maxUnavailable, 0, 'rolling updates keep full capacity');
});
