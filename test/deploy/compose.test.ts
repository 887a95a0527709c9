// deploy/docker-compose.yml, checked without Docker: it parses, names the services and images the
// README promises, sets only variables the gateway reads (and loadConfig accepts them), publishes
// the right ports on loopback only, mounts files that exist. Then the example stack runs for real
// with the compose settings: the example legacy app behind two gateways with real Redis and
// PostgreSQL seeded by examples/seed.sql, signed in through the login form.
import { existsSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import pg from 'pg';
import t from 'tap';
import { parse } from 'yaml';
import { ConfigError, loadConfig, SECRET_VARIABLES } from '../../src/config/config.js';
import { startTestGateway, uniquePrefix } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { services } from '../helpers/services.js';
import { applySeed, asUserOf, cookieLine, formLogin, startLegacyApp } from './lib/stack.js';

const deployDir = new URL('../../deploy/', import.meta.url);
const composeText = readFileSync(new URL('docker-compose.yml', deployDir), 'utf8');
const configSource = readFileSync(new URL('../../src/config/config.ts', import.meta.url), 'utf8');

interface Service {
  image?: string;
  build?: { context: string; dockerfile?: string } | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: string[];
  volumes?: string[];
  network_mode?: string;
  depends_on?: string[] | Record<string, unknown>;
  stop_grace_period?: string;
  command?: string[];
}
const compose = parse(composeText, { merge: true }) as { services: Record<string, Service> };
const svc = (name: string): Service => {
  const s = compose.services[name];
  if (!s) throw new Error(`no service ${name} in deploy/docker-compose.yml`);
  return s;
};

/** Compose interpolation: `$$` is a literal `$`; this file uses no host variables. */
function interpolate(value: string): string {
  if (/(^|[^$])\$(\{|[A-Za-z_])/.test(value.replace(/\$\$/g, ''))) throw new Error(`unexpected variable interpolation in ${value}`);
  return value.replace(/\$\$/g, '$');
}

/** A service's environment as the container sees it. */
function envOf(name: string): Record<string, string> {
  const raw = svc(name).environment ?? {};
  const pairs = Array.isArray(raw) ? raw.map((l) => l.split(/=(.*)/s, 2) as [string, string]) : Object.entries(raw).map(([k, v]) => [k, String(v ?? '')]);
  return Object.fromEntries(pairs.map(([k, v]) => [k, interpolate(v ?? '')]));
}

const gateways = ['gateway-1', 'gateway-2'];
const apps = ['app-1', 'app-2'];

t.test('services and images: two gateway/app pairs, Redis, PostgreSQL, Prometheus, Grafana', async (t) => {
  t.same(Object.keys(compose.services).sort(), [...apps, ...gateways, 'grafana', 'postgres', 'prometheus', 'redis'].sort());
  for (const g of gateways) {
    const build = svc(g).build;
    const context = typeof build === 'string' ? build : build?.context;
    t.equal(context, '..', `${g} is built from the repository root`);
    t.ok(existsSync(new URL(`${context}/${(typeof build === 'object' && build.dockerfile) || 'Dockerfile'}`, deployDir)), `${g}'s Dockerfile exists`);
  }
  const images: Record<string, RegExp> = {
    redis: /^redis:7(\.\d+)*-alpine$/,
    postgres: /^postgres:1[4-7](\.\d+)*-alpine$/,
    prometheus: /^prom\/prometheus:v\d+\.\d+\.\d+$/,
    grafana: /^grafana\/grafana(-oss)?:\d+\.\d+\.\d+$/,
    'app-1': /^node:24(\.\d+)*-alpine$/,
    'app-2': /^node:24(\.\d+)*-alpine$/,
  };
  for (const [name, re] of Object.entries(images)) t.match(svc(name).image, re, `${name} runs ${svc(name).image} (a pinned tag, not latest)`);
});

t.test('every GATEWAY_*, REDIS_* and DATABASE_URL variable is one the gateway reads, and loadConfig accepts them', async (t) => {
  for (const g of gateways) {
    const env = envOf(g);
    for (const name of Object.keys(env)) {
      if (!/^(GATEWAY_|REDIS_|DATABASE_URL|LOG_LEVEL)/.test(name)) continue;
      const base = name.replace(/_FILE$/, '');
      const read = name.endsWith('_FILE') ? (SECRET_VARIABLES as readonly string[]).includes(base) : configSource.includes(`'${name}'`);
      t.ok(read, `${g}: ${name} is read by src/config/config.ts`);
    }
    let config;
    try {
      config = loadConfig(env);
    } catch (err) {
      t.fail(`${g}: ${err instanceof ConfigError ? err.problems.join('; ') : String(err)}`);
      continue;
    }
    t.equal(config.cookieSecure, false, `${g}: Secure cookies off for plain http on localhost`);
    t.equal(config.upstream?.hostname, '127.0.0.1', `${g}: the app is reached on loopback only`);
    t.equal(config.redis?.mode, 'standalone', `${g}: sessions in Redis`);
    t.ok(config.userQuery && config.userRehashQuery && config.allowPlaintextPasswords, `${g}: reads the legacy users table and upgrades its hashes`);
    t.ok(composeText.split('\n').some((line, i, lines) => /GATEWAY_COOKIE_SECURE:/.test(line) && /#.*http\b/.test(lines[i - 1] ?? '')), 'the line above GATEWAY_COOKIE_SECURE says why (plain http)');
    const grace = Number(/^(\d+)s$/.exec(svc(g).stop_grace_period ?? '')?.[1] ?? 10) * 1000;
    t.ok(grace >= config.shutdownDelayMs + config.shutdownTimeoutMs, `${g}: stop_grace_period covers shutdown delay + drain timeout`);
  }
  t.same(envOf('gateway-1'), envOf('gateway-2'), 'both replicas share one configuration (same secret, same stores)');
});

t.test('ports: each gateway on localhost, its app unreachable from outside, admin ports not published', async (t) => {
  const published = (name: string) => (svc(name).ports ?? []).map((p) => p.split(':'));
  t.same(published('gateway-1'), [['127.0.0.1', '8000', String(loadConfig(envOf('gateway-1')).port)]], 'gateway-1 → http://localhost:8000');
  t.same(published('gateway-2'), [['127.0.0.1', '8001', String(loadConfig(envOf('gateway-2')).port)]], 'gateway-2 → http://localhost:8001');
  t.same(published('prometheus'), [['127.0.0.1', '9090', '9090']]);
  t.same(published('grafana'), [['127.0.0.1', '3000', '3000']]);
  for (const [name, s] of Object.entries(compose.services)) {
    for (const p of published(name)) t.equal(p[0], '127.0.0.1', `${name} publishes on loopback only`);
    if (!apps.includes(name)) continue;
    const gateway = gateways[apps.indexOf(name)] ?? '';
    t.equal(s.network_mode, `service:${gateway}`, `${name} shares ${gateway}'s network namespace, like a pod`);
    t.notOk(s.ports, `${name} publishes nothing`);
    const env = envOf(name);
    t.equal(env.HOST, '127.0.0.1', `${name} binds to loopback`);
    t.equal(new URL(loadConfig(envOf(gateway)).upstream?.toString() ?? '').port, env.PORT, `${gateway} forwards to ${name}'s port`);
    t.same(s.command, ['node', '/app/legacy-app.mjs'], `${name} runs the example app`);
  }
});

t.test('every mounted file exists in the repository', async (t) => {
  for (const [name, s] of Object.entries(compose.services)) {
    for (const volume of s.volumes ?? []) {
      const [source = ''] = volume.split(':');
      if (!source.startsWith('.')) continue;
      t.ok(existsSync(new URL(source, deployDir)), `${name}: ${source} exists`);
    }
  }
  const legacy = readFileSync(new URL('examples/legacy-app.mjs', deployDir), 'utf8');
  t.notMatch(legacy, /password|cookie|authorization/i, 'the example app has no login code of its own (no password, cookie or Authorization handling)');
  t.match(legacy, /x-forwarded-user/, 'it reads X-Forwarded-User');
});

t.test('Prometheus scrapes both gateways and Grafana is provisioned with it', async (t) => {
  const mounts = (name: string) => (svc(name).volumes ?? []).map((v) => v.split(':') as [string, string, string?]);
  const targetOf = (name: string, source: string) => mounts(name).find(([s]) => s === source)?.[1];
  const promConfig = targetOf('prometheus', './prometheus/prometheus.yml');
  t.equal(promConfig, '/etc/prometheus/prometheus.yml', 'prometheus.yml replaces the image default');
  const prom = parse(readFileSync(new URL('prometheus/prometheus.yml', deployDir), 'utf8')) as {
    rule_files: string[];
    scrape_configs: Array<{ static_configs: Array<{ targets: string[] }> }>;
  };
  for (const rules of prom.rule_files) {
    t.ok(mounts('prometheus').some(([, target]) => target === posix.join(posix.dirname(promConfig ?? ''), rules)), `${rules} is mounted beside prometheus.yml`);
  }
  const targets = prom.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets));
  t.same(targets.map((x) => x.split(':')[0]).sort(), gateways, 'one target per gateway service');
  for (const target of targets) {
    const [host = '', port] = target.split(':');
    t.equal(Number(port), loadConfig(envOf(host)).adminPort, `${target} is ${host}'s admin port`);
  }

  t.ok(mounts('grafana').every(([, target]) => target.startsWith('/etc/grafana/provisioning/') || target.startsWith('/var/lib/grafana/dashboards/')), 'grafana mounts provisioning and dashboards');
  const datasources = parse(readFileSync(new URL('grafana/provisioning/datasources/prometheus.yml', deployDir), 'utf8')) as { datasources: Array<{ type: string; url: string }> };
  const prometheusSource = datasources.datasources.find((d) => d.type === 'prometheus');
  t.equal(prometheusSource && new URL(prometheusSource.url).host, 'prometheus:9090', 'the Grafana datasource is the prometheus service');
  const providers = parse(readFileSync(new URL('grafana/provisioning/dashboards/session-gateway.yml', deployDir), 'utf8')) as { providers: Array<{ options: { path: string } }> };
  const dashboardTarget = targetOf('grafana', './grafana/dashboards/session-gateway.json') ?? '';
  for (const p of providers.providers) {
    t.ok([dashboardTarget, posix.dirname(dashboardTarget)].includes(p.options.path.replace(/\/$/, '')), `dashboard provider path ${p.options.path} is where the dashboard is mounted`);
  }
});

t.test('docker compose up, for real: the legacy app is protected, sign-in reaches it, both replicas share the session', async (t) => {
  const { redis, pg: postgres } = await services(t);
  await applySeed(postgres.url);
  const composeEnv = envOf('gateway-1');
  // The compose settings, with only the addresses swapped for this machine's test servers.
  const env = {
    ...composeEnv,
    REDIS_URL: redis.url,
    DATABASE_URL: asUserOf(postgres.url, composeEnv.DATABASE_URL ?? ''),
    GATEWAY_REDIS_PREFIX: uniquePrefix(),
  };
  const [app1, app2] = [await startLegacyApp(t, 'app-1'), await startLegacyApp(t, 'app-2')];
  const gw1 = await startTestGateway(t, { ...env, GATEWAY_UPSTREAM: app1 });
  const gw2 = await startTestGateway(t, { ...env, GATEWAY_UPSTREAM: app2 });

  const anonymous = await send(`${gw1.url}/`, { headers: { accept: 'text/html', 'x-forwarded-user': 'mallory' } });
  t.equal(anonymous.status, 302, 'without a session the app is not reached, whatever headers the client sends');
  t.match(anonymous.headers.location, /\/_auth\/login\?rd=/);

  const wrong = await formLogin(gw1.url, 'alice', 'not-her-password');
  t.equal(wrong.res.status, 401, 'a wrong password is refused');

  const { res, jar } = await formLogin(gw1.url, 'alice', 'changeme');
  t.equal(res.status, 303, 'alice signs in with the plaintext password of the legacy table');
  t.equal(res.headers.location, '/', 'and goes back to the page she asked for');
  const cookie = cookieLine(jar);

  const page = await send(`${gw1.url}/`, { headers: { cookie, 'x-forwarded-user': 'mallory' } });
  t.equal(page.status, 200);
  t.match(page.body, /<h1>Hello, alice<\/h1>/, 'the app greets her from X-Forwarded-User; a client-sent value never reaches it');
  t.match(page.body, /replica <strong>app-1<\/strong>/);

  const other = await send(`${gw2.url}/some/page`, { headers: { cookie } });
  t.equal(other.status, 200, 'replica 2 knows the session: it lives in Redis');
  t.match(other.body, /Hello, alice[\s\S]*app-2/);

  // The gateway's least-privilege role upgraded the plaintext password (asynchronously).
  const db = new pg.Client({ connectionString: postgres.url });
  await db.connect();
  t.teardown(() => db.end());
  let stored = '';
  for (let i = 0; i < 100 && !stored.startsWith('$argon2id$'); i++) {
    stored = (await db.query<{ pass: string }>("SELECT pass FROM users WHERE user_id = 'alice'")).rows[0]?.pass ?? '';
    if (!stored.startsWith('$argon2id$')) await new Promise((r) => setTimeout(r, 50));
  }
  t.match(stored, /^\$argon2id\$/, 'alice’s password is now stored as argon2id');
  const again = await formLogin(gw2.url, 'alice', 'changeme');
  t.equal(again.res.status, 303, 'and she can still sign in, now against the hash');

  const logout = await send(`${gw1.url}/_auth/logout`, { method: 'POST', headers: { cookie, origin: gw1.url } });
  t.equal(logout.status, 303, 'the app’s Sign out button ends the session');
  const after = await send(`${gw2.url}/`, { headers: { cookie, accept: 'text/html' } });
  t.equal(after.status, 302, 'on every replica');
  const errors = [...gw1.logs, ...gw2.logs].filter((line) => (JSON.parse(line) as { level: number }).level >= 50);
  t.same(errors, [], 'no error was logged: the least-privilege role is enough');
});
