// Tracing off (no OTEL_EXPORTER_OTLP_ENDPOINT): nothing is sent and no OpenTelemetry SDK module is
// even loaded. Every module this process resolves from here on is recorded (the gateway is imported
// after the hook is in place), then a gateway serves sign-in and proxied requests; a second gateway
// with the endpoint set shows that the recorder does see the SDK when it is loaded.
import { registerHooks } from 'node:module';
import t from 'tap';

const resolved: string[] = [];
registerHooks({
  resolve(specifier, context, nextResolve) {
    const result = nextResolve(specifier, context);
    resolved.push(result.url);
    return result;
  },
});
// The API package alone is loaded anyway: prom-client requires it (for exemplars). The SDK is the rest.
const opentelemetrySdk = () => resolved.filter((url) => url.includes('/@opentelemetry/') && !url.includes('/@opentelemetry/api/'));

const { send } = await import('../helpers/http.js');
const { login, seedUsers, startTestGateway, uniquePrefix, withSession } = await import('../helpers/gateway.js');
const { startOtlpReceiver } = await import('../helpers/otlp-receiver.js');
const { services } = await import('../helpers/services.js');
const { startEchoUpstream } = await import('../helpers/upstream.js');

const { redis, pg } = await services(t);
await seedUsers(t, pg.url, [{ username: 'alice', password: 'correct horse' }]);
const upstream = await startEchoUpstream();
t.teardown(() => upstream.close());
const receiver = await startOtlpReceiver();
t.teardown(() => receiver.close());
const env = { REDIS_URL: redis.url, DATABASE_URL: pg.url, GATEWAY_UPSTREAM: upstream.url, GATEWAY_REDIS_PREFIX: uniquePrefix(), GATEWAY_COOKIE_SECURE: 'false' };

t.test('unset: requests are served, nothing is exported, no OpenTelemetry SDK module is loaded', async (t) => {
  const gw = await startTestGateway(t, env);
  t.equal(gw.config.tracing, null);
  const cookie = await login(gw, 'alice', 'correct horse');
  const res = await send(`${gw.url}/reports`, { headers: withSession(gw, cookie, { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }) });
  t.equal(res.status, 200);
  t.equal(res.json<{ headers: Record<string, string> }>().headers.traceparent, '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', "the client's own traceparent passes unchanged, as before");
  await gw.stop();
  t.ok(resolved.some((url) => url.includes('/src/server.ts') || url.includes('/src/tracing/index.ts')), 'the recorder saw the gateway load');
  t.same(opentelemetrySdk(), [], 'no @opentelemetry module but the API resolved');
  t.equal(receiver.requests.length, 0, 'nothing sent');
});

t.test('set (the control): the SDK is loaded and spans arrive', async (t) => {
  const gw = await startTestGateway(t, { ...env, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces` });
  const cookie = await login(gw, 'alice', 'correct horse');
  t.equal((await send(`${gw.url}/reports`, { headers: withSession(gw, cookie) })).status, 200);
  await gw.stop();
  for (const name of ['sdk-trace', 'exporter-trace-otlp-http', 'resources', 'core']) {
    t.ok(opentelemetrySdk().some((url) => url.includes(`/@opentelemetry/${name}/`)), `@opentelemetry/${name} resolved`);
  }
  t.ok(receiver.spans.length > 0, 'spans received');
});
