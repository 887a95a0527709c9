// The Grafana dashboard and its provisioning (deploy/grafana): the JSON is a dashboard with the
// operator panels, every PromQL expression is valid (promtool) and asks only for series that a
// real gateway exports on its /metrics after real traffic, and the provisioning files point
// Grafana at the Prometheus data source and at the dashboard.
import { execFile } from 'node:child_process';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { login, seedUsers, startTestGateway, uniquePrefix, withSession } from '../helpers/gateway.js';
import { send } from '../helpers/http.js';
import { familyOf, parseExposition, queryRefs } from '../helpers/promql.js';
import { findExecutable, services } from '../helpers/services.js';
import { startEchoUpstream } from '../helpers/upstream.js';

const grafanaDir = join(import.meta.dirname, '..', '..', 'deploy', 'grafana');
const dashboardFile = join(grafanaDir, 'dashboards', 'session-gateway.json');
/** Where the dashboard provider expects deploy/grafana/dashboards to be mounted in the container. */
const DASHBOARDS_MOUNT = '/var/lib/grafana/dashboards';
/** Labels Prometheus adds at scrape time: valid in queries although /metrics never shows them. */
const SCRAPE_LABELS = ['instance', 'job'];

interface Target {
  expr: string;
  legendFormat?: string;
  refId: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query: unknown;
  definition?: string;
  multi?: boolean;
  includeAll?: boolean;
  current?: { value: unknown };
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
}

const dashboard = JSON.parse(await readFile(dashboardFile, 'utf8')) as Dashboard;
/** Every panel, rows' children included (a collapsed row keeps its panels inside it). */
const allPanels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const dataPanels = allPanels.filter((p) => p.type !== 'row');
const queries = dataPanels.flatMap((p) => (p.targets ?? []).map((target) => ({ panel: p.title, ...target })));
const variable = (name: string) => dashboard.templating.list.find((v) => v.name === name);
const instanceVariable = variable('instance');
/** label_values(metric, label) of the instance variable, checked like any panel query. */
const variableQuery = /^label_values\((\w+),\s*(\w+)\)$/.exec(instanceVariable?.definition ?? '');

t.test('the dashboard has the operator panels, each on the templated Prometheus data source', async (t) => {
  t.equal(dashboard.uid, 'session-gateway');
  t.ok(dashboard.schemaVersion >= 36, `schemaVersion ${dashboard.schemaVersion} is a recent one`);
  const titles = dataPanels.map((p) => p.title);
  for (const title of [
    'Requests/s',
    'p99 latency',
    'Session cache hit ratio',
    'Requests/s by status class',
    'Request latency',
    'Upstream latency',
    'Session validations by outcome',
    'Session cache entries',
    'Logins by outcome',
    'Store errors',
    'Memory',
    'CPU',
  ]) {
    t.ok(titles.includes(title), `panel "${title}"`);
  }
  t.equal(new Set(allPanels.map((p) => p.id)).size, allPanels.length, 'panel ids are unique');
  for (const p of dataPanels) {
    t.same(p.datasource, { type: 'prometheus', uid: '${datasource}' }, `${p.title}: data source from the variable`);
    t.ok(p.targets?.length, `${p.title}: has queries`);
  }
  t.match(variable('datasource'), { type: 'datasource', query: 'prometheus', current: { value: 'prometheus' } }, 'defaults to the provisioned uid');
  t.match(instanceVariable, { type: 'query', multi: true, includeAll: true }, 'an instance variable, several or all selectable');
  t.ok(variableQuery, 'the instance variable lists label_values(metric, instance)');
  t.equal(variableQuery?.[2], 'instance');
});

t.test('the panels tile the 24-column grid without overlapping', async (t) => {
  const cells = new Map<string, string>();
  const overlaps = new Set<string>();
  for (const p of allPanels) {
    const { x, y, w, h } = p.gridPos;
    t.ok(x >= 0 && w > 0 && h > 0 && x + w <= 24, `${p.title}: inside the grid`);
    for (let row = y; row < y + h; row++) {
      for (let col = x; col < x + w; col++) {
        const other = cells.get(`${row},${col}`);
        if (other) overlaps.add(`${p.title} / ${other}`);
        cells.set(`${row},${col}`, p.title);
      }
    }
  }
  t.same([...overlaps], [], 'no two panels share a cell');
});

t.test('every query filters on the instance variable', async (t) => {
  for (const q of queries) {
    for (const s of queryRefs(q.expr).selectors) {
      t.match(q.expr, `${s.metric}{instance=~"$instance"`, `${q.panel} ${q.refId}: ${s.metric} is filtered by $instance`);
    }
  }
});

t.test('every query is valid PromQL (promtool check rules)', async (t) => {
  const promtool = findExecutable('promtool', ['/usr/bin', '/usr/local/bin']);
  if (!promtool) throw new Error('test setup: promtool not found on PATH (install Debian package prometheus)');
  // Grafana's variables are not PromQL: substitute what Grafana would at query time.
  const grafanaToPromql = (expr: string) => expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*');
  const rules = { groups: [{ name: 'dashboard', rules: queries.map((q, n) => ({ record: `dashboard:query_${n}`, expr: grafanaToPromql(q.expr) })) }] };
  const file = join(t.testdir(), 'dashboard-rules.yml');
  await writeFile(file, stringifyYaml(rules));
  const result = await promisify(execFile)(promtool, ['check', 'rules', file]).catch((err: { stdout: string; stderr: string }) => err);
  t.match(result.stdout, `SUCCESS: ${queries.length} rules found`, result.stderr);
});

t.test('every query asks only for series a live gateway exports', async (t) => {
  const { redis, pg } = await services(t);
  await seedUsers(t, pg.url, [{ username: 'alice', password: 'correct horse' }]);
  const upstream = await startEchoUpstream();
  t.teardown(() => upstream.close());
  const gw = await startTestGateway(t, { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_UPSTREAM: upstream.url, GATEWAY_REDIS_PREFIX: uniquePrefix() });
  const loginAs = (password: string) =>
    send(`${gw.url}/_auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password }) });

  // Traffic that gives every labelled counter and histogram a series: a login, a wrong password,
  // proxied requests with, without and with a forged cookie (a store lookup), a logout (an
  // invalidation), and a login while PostgreSQL is down (a store error).
  const cookie = await login(gw, 'alice', 'correct horse');
  t.equal((await loginAs('wrong horse')).status, 401, 'wrong password');
  t.equal((await send(`${gw.url}/app`, { headers: withSession(gw, cookie) })).status, 200, 'proxied');
  t.equal((await send(`${gw.url}/app`)).status, 401, 'no cookie');
  t.equal((await send(`${gw.url}/app`, { headers: withSession(gw, 'forged.value') })).status, 401, 'forged cookie');
  t.equal((await send(`${gw.url}/_auth/logout`, { method: 'POST', headers: withSession(gw, cookie) })).status < 400, true, 'logout');
  await pg.stop();
  t.equal((await loginAs('correct horse')).status, 503, 'login while PostgreSQL is down');

  const families = parseExposition((await send(`${gw.adminUrl}/metrics`)).body);
  const refs = queries.map((q) => ({ where: `${q.panel} ${q.refId}`, legend: q.legendFormat ?? '', ...queryRefs(q.expr) }));
  if (variableQuery) refs.push({ where: 'variable instance', legend: '', selectors: [{ metric: variableQuery[1] as string, labels: [] }], groupingLabels: [] });
  const used = new Set<string>();
  for (const ref of refs) {
    t.ok(ref.selectors.length > 0, `${ref.where}: reads at least one metric`);
    const known = new Set(SCRAPE_LABELS);
    for (const { metric, labels } of ref.selectors) {
      used.add(metric);
      const family = familyOf(families, metric);
      if (!t.ok(family, `${ref.where}: ${metric} is a series of a metric the gateway exports`)) continue;
      const seen = family?.samples.get(metric);
      if (!t.ok(seen, `${ref.where}: ${metric} has samples after the traffic`)) continue;
      for (const label of seen ?? []) known.add(label);
      for (const label of labels) t.ok(known.has(label), `${ref.where}: ${metric} has label ${label}`);
    }
    for (const label of ref.groupingLabels) t.ok(known.has(label), `${ref.where}: grouping label ${label} exists on its metrics`);
    for (const [, label] of ref.legend.matchAll(/\{\{\s*(\w+)\s*\}\}/g)) t.ok(known.has(label as string), `${ref.where}: legend label ${label} exists`);
  }
  // The SPEC section 6 metrics and the README extras each appear on the dashboard.
  for (const family of [
    'gateway_request_duration_seconds_bucket',
    'gateway_request_duration_seconds_count',
    'gateway_upstream_request_duration_seconds_bucket',
    'gateway_session_cache_requests_total',
    'gateway_session_validations_total',
    'gateway_logins_total',
    'gateway_store_errors_total',
    'gateway_store_operation_duration_seconds_bucket',
    'gateway_session_cache_entries',
    'gateway_session_cache_invalidations_total',
    'process_resident_memory_bytes',
    'process_cpu_seconds_total',
  ]) {
    t.ok(used.has(family), `the dashboard shows ${family}`);
  }
});

t.test('provisioning: the Prometheus data source and the dashboard provider', async (t) => {
  const datasources = parseYaml(await readFile(join(grafanaDir, 'provisioning', 'datasources', 'prometheus.yml'), 'utf8')) as {
    apiVersion: number;
    datasources: Array<Record<string, unknown>>;
  };
  t.equal(datasources.apiVersion, 1);
  t.match(datasources.datasources, [{ type: 'prometheus', uid: 'prometheus', url: 'http://prometheus:9090', access: 'proxy' }]);
  t.equal(variable('datasource')?.current?.value, datasources.datasources[0]?.uid, 'the dashboard defaults to the provisioned data source');

  const providersText = await readFile(join(grafanaDir, 'provisioning', 'dashboards', 'session-gateway.yml'), 'utf8');
  const providers = parseYaml(providersText) as { apiVersion: number; providers: Array<{ type: string; options: { path: string } }> };
  t.equal(providers.apiVersion, 1);
  t.equal(providers.providers.length, 1);
  const provider = providers.providers[0];
  t.equal(provider?.type, 'file');
  t.equal(provider?.options.path, DASHBOARDS_MOUNT, 'reads the mounted dashboards folder');
  t.match(providersText, `./grafana/dashboards   -> ${DASHBOARDS_MOUNT}`, 'the header documents the mount it expects');
  // The folder mounted there holds the dashboard, and nothing Grafana would fail to load.
  const files = await readdir(join(grafanaDir, 'dashboards'));
  t.same(files, ['session-gateway.json']);
});
