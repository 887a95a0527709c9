// The standard OpenTelemetry variables as the configuration reads them (SPEC section 2): unset is
// off, the generic endpoint gets /v1/traces, and a wrong value is one line naming the variable.
import t from 'tap';
import { ConfigError, loadConfig } from '../../src/config/config.js';

const problems = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

t.test('unset, disabled or exporter none: off', async (t) => {
  t.equal(loadConfig({}).tracing, null);
  t.equal(loadConfig({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' }).tracing, null, 'no endpoint, no tracing');
  t.equal(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' }).tracing, null);
  t.equal(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' }).tracing, null);
});

t.test('the endpoints: the generic one gets /v1/traces, the traces one is used as it is and wins', async (t) => {
  t.equal(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).tracing?.url, 'http://collector:4318/v1/traces');
  t.equal(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otlp.example.com/otlp/' }).tracing?.url, 'https://otlp.example.com/otlp/v1/traces');
  t.equal(loadConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/custom' }).tracing?.url, 'http://collector:4318/custom');
  t.equal(
    loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:4318/v1/traces' }).tracing?.url,
    'http://b:4318/v1/traces',
  );
});

t.test('defaults and explicit sampler, ratio and service name', async (t) => {
  const defaults = loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).tracing;
  t.same(defaults, { url: 'http://collector:4318/v1/traces', serviceName: null, sampler: 'parentbased_always_on', samplerRatio: 1, exportDelayMs: 5_000 });
  const set = loadConfig({
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0.25',
    OTEL_SERVICE_NAME: 'login-gateway',
    OTEL_BSP_SCHEDULE_DELAY: '1000',
  }).tracing;
  t.same(set, { url: 'http://collector:4318/v1/traces', serviceName: 'login-gateway', sampler: 'parentbased_traceidratio', samplerRatio: 0.25, exportDelayMs: 1_000 });
});

t.test('wrong values: one line each, naming the variable', async (t) => {
  const lines = problems({
    OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318',
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url',
    OTEL_TRACES_SAMPLER: 'jaeger_remote',
    OTEL_TRACES_SAMPLER_ARG: '1.5',
    OTEL_TRACES_EXPORTER: 'zipkin',
    OTEL_BSP_SCHEDULE_DELAY: '5s',
  });
  t.equal(lines.length, 6, lines.join('\n'));
  for (const name of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_TRACES_SAMPLER', 'OTEL_TRACES_SAMPLER_ARG', 'OTEL_TRACES_EXPORTER', 'OTEL_BSP_SCHEDULE_DELAY']) {
    t.equal(lines.filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}:`)).length, 1, name);
  }
  t.match(problems({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER_ARG: 'half' })[0], /^OTEL_TRACES_SAMPLER_ARG must be a ratio between 0 and 1/);
});
