// deploy/prometheus: the scrape config and alert rules pass promtool's own checks, each alert is
// proven by promtool unit tests to fire on synthetic series (and to stay quiet on healthy ones),
// and every metric and label the rules and their tests use is one a live gateway exports.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/config.js';
import { startTestGateway } from '../helpers/gateway.js';
import { findExecutable } from '../helpers/services.js';
import { LABEL_VALUES, TARGET_LABELS, declaredLabels, liveMetricNames } from './lib/metrics.js';
import { labelMatchers, metricNames } from './lib/promql.js';

const dir = new URL('../../deploy/prometheus/', import.meta.url);
const path = (name: string) => fileURLToPath(new URL(name, dir));
const promtool = findExecutable('promtool', ['/usr/bin']);
if (!promtool) throw new Error('promtool not found: install Debian package prometheus (.ci/run installs it)');

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface AlertTest {
  eval_time: string;
  alertname: string;
  exp_alerts: unknown[] | null;
}
const rules = (parse(readFileSync(path('alerts.yml'), 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);
const unitTests = parse(readFileSync(path('alerts.test.yml'), 'utf8')) as {
  rule_files: string[];
  tests: Array<{ input_series: Array<{ series: string }>; alert_rule_test: AlertTest[] }>;
};
const scrape = parse(readFileSync(path('prometheus.yml'), 'utf8')) as {
  rule_files: string[];
  scrape_configs: Array<{ job_name: string; metrics_path?: string; static_configs: Array<{ targets: string[] }> }>;
};

async function run(...args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(promtool as string, args, { cwd: fileURLToPath(dir) });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

t.test('promtool check config accepts prometheus.yml and the rule files it loads', async (t) => {
  const { code, output } = await run('check', 'config', 'prometheus.yml');
  t.equal(code, 0, output);
  t.same(scrape.rule_files, ['alerts.yml'], 'loads the alert rules');
});

t.test('promtool check rules accepts alerts.yml', async (t) => {
  const { code, output } = await run('check', 'rules', 'alerts.yml');
  t.equal(code, 0, output);
});

t.test('promtool test rules: every alert fires on synthetic series and stays quiet on healthy ones', async (t) => {
  const { code, output } = await run('test', 'rules', 'alerts.test.yml');
  t.equal(code, 0, output);
  t.same(unitTests.rule_files, ['alerts.yml'], 'the unit tests load the real rules file');
  const checks = unitTests.tests.flatMap((u) => u.alert_rule_test);
  for (const rule of rules.filter((r) => r.alert)) {
    const mine = checks.filter((c) => c.alertname === rule.alert);
    t.ok(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${rule.alert} has a case where it fires`);
    t.ok(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${rule.alert} has a case where it stays quiet`);
  }
});

t.test('the alerts the operator needs are there, each with a severity and a summary', async (t) => {
  const alerts = rules.filter((r) => r.alert);
  const find = (re: RegExp) => alerts.find((r) => re.test(r.expr));
  t.ok(find(/gateway_session_cache_requests_total\{result="hit"\}/), 'cache hit ratio');
  t.ok(find(/gateway_store_errors_total\{store="redis"\}/), 'Redis errors');
  t.ok(find(/gateway_logins_total\{outcome=~"failure\|throttled"\}/), 'login failure spike');
  t.ok(find(/gateway_upstream_request_duration_seconds_count\{status_class="5xx"\}/), 'upstream 5xx');
  t.ok(find(/histogram_quantile\(0\.99,.*gateway_request_duration_seconds_bucket/), 'p99 latency');
  for (const a of alerts) {
    t.match(a.labels?.severity, /^(critical|warning)$/, `${a.alert} has a severity`);
    t.ok(a.annotations?.summary && a.annotations.description, `${a.alert} has a summary and a description`);
  }
});

t.test('rules and their unit tests only use metrics and labels a live gateway exports', async (t) => {
  const gw = await startTestGateway(t, {});
  const live = await liveMetricNames(gw.adminUrl);
  t.ok(live.has('gateway_logins_total'), 'the live scrape lists the gateway metrics');
  const labels = declaredLabels();

  const checkSelectors = (where: string, expr: string) => {
    const names = metricNames(expr);
    t.ok(names.length > 0, `${where} selects a metric`);
    for (const name of names) t.ok(live.has(name), `${where}: ${name} is exported by /metrics`);
    for (const m of labelMatchers(expr)) {
      if (!m.metric || TARGET_LABELS.includes(m.label)) continue;
      t.ok(labels.get(m.metric)?.has(m.label), `${where}: ${m.metric} has a label ${m.label}`);
      const allowed = LABEL_VALUES[m.label];
      if (!allowed || m.label === 'le') continue;
      const values = m.op === '=~' || m.op === '!~' ? m.value.split('|') : [m.value];
      for (const v of values) t.ok(allowed.includes(v), `${where}: ${m.label}="${v}" is a value the gateway emits`);
    }
  };
  for (const rule of rules) checkSelectors(rule.alert ?? rule.record ?? 'rule', rule.expr);
  for (const series of unitTests.tests.flatMap((u) => u.input_series)) checkSelectors(`unit test series ${series.series}`, series.series);
});

t.test('the scrape config targets the admin port on /metrics', async (t) => {
  const job = scrape.scrape_configs.find((j) => j.job_name === 'session-gateway');
  t.ok(job, 'a session-gateway job');
  t.equal(job?.metrics_path ?? '/metrics', '/metrics');
  const targets = job?.static_configs.flatMap((s) => s.targets) ?? [];
  t.ok(targets.length > 0, 'with targets');
  const adminPort = loadConfig({}).adminPort;
  for (const target of targets) t.match(target, new RegExp(`:${adminPort}$`), `${target} is an admin listener (port ${adminPort})`);
});
