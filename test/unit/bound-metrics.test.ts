// The metrics recorded on every request (admin/bound-metrics.ts) against prom-client's own: the
// same observations must be scraped as the very same text, in both exposition formats.
import t from 'tap';
import { Counter, Histogram, Registry, type RegistryContentType } from 'prom-client';
import { BoundHistogram, countedOnRead } from '../../src/admin/bound-metrics.js';

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
// On bounds, between them, below the first, above the last, zero: every bucket edge.
const VALUES = [0, 0.0001, 0.0005, 0.0007, 0.001, 0.003, 0.01, 0.0100001, 0.2, 1, 2.5, 29.9, 30, 31, 1e6];

function pair(contentType?: typeof Registry.OPENMETRICS_CONTENT_TYPE) {
  const ours = new Registry<RegistryContentType>();
  const theirs = new Registry<RegistryContentType>();
  if (contentType !== undefined) for (const registry of [ours, theirs]) registry.setContentType(contentType);
  const config = { name: 'x_duration_seconds', help: 'Time taken.', labelNames: ['method', 'status_class'] as const, buckets: BUCKETS };
  return {
    ours,
    theirs,
    bound: new BoundHistogram({ ...config, registers: [ours] }),
    stock: new Histogram({ ...config, registers: [theirs] }),
  };
}

t.test('a bound histogram is scraped as prom-client’s own histogram with the same observations', async (t) => {
  for (const format of [undefined, Registry.OPENMETRICS_CONTENT_TYPE] as const) {
    const { ours, theirs, bound, stock } = pair(format);
    t.equal(await ours.metrics(), await theirs.metrics(), `${format ?? 'text'}: nothing observed`);
    const getOk = bound.series('GET', '2xx');
    const postErr = bound.series('POST', '5xx');
    for (const value of VALUES) {
      getOk.observe(value);
      stock.labels('GET', '2xx').observe(value);
    }
    postErr.observe(0.042);
    stock.labels('POST', '5xx').observe(0.042);
    // Bound twice: the same series.
    bound.series('GET', '2xx').observe(0.3);
    stock.labels('GET', '2xx').observe(0.3);
    bound.observe({ method: 'OTHER', status_class: '4xx' }, 0.002);
    stock.observe({ method: 'OTHER', status_class: '4xx' }, 0.002);
    const scraped = await ours.metrics();
    t.equal(scraped, await theirs.metrics(), `${format ?? 'text'}: the same exposition`);
    t.match(scraped, /x_duration_seconds_bucket\{le="0\.001",method="GET",status_class="2xx"\} 5\n/, 'cumulative buckets, bounds included');
    t.match(scraped, /x_duration_seconds_count\{method="GET",status_class="2xx"\} 16\n/);
    t.same(await ours.getMetricsAsJSON(), await theirs.getMetricsAsJSON(), `${format ?? 'text'}: the same JSON`);
    bound.reset();
    stock.reset();
    t.equal(await ours.metrics(), await theirs.metrics(), `${format ?? 'text'}: reset`);
  }
});

t.test('a bound histogram refuses what prom-client refuses', async (t) => {
  const { bound } = pair();
  t.throws(() => bound.series('GET').observe(1), /expected 2 label values/);
  t.throws(() => bound.series('GET', '2xx').observe(Number.NaN), /not a finite number/);
  const registry = new Registry();
  new BoundHistogram({ name: 'dup', help: 'h', labelNames: [], buckets: [1], registers: [registry] });
  t.throws(() => new Counter({ name: 'dup', help: 'h', registers: [registry] }), /already been registered/, 'one name per registry, as for prom-client’s own');
});

t.test('counted on read: bound series are whole in every scrape, beside prom-client’s own inc', async (t) => {
  const registry = new Registry();
  const { counter, series } = countedOnRead({ name: 'x_total', help: 'Counted.', labelNames: ['result'] as const, registers: [registry] });
  const hit = series('hit');
  const miss = series('miss');
  t.match(await registry.metrics(), /# TYPE x_total counter\n$/m, 'nothing counted: no series');
  for (let i = 0; i < 5; i++) hit.inc();
  miss.inc();
  counter.labels('miss').inc(2);
  let scraped = await registry.metrics();
  t.match(scraped, /x_total\{result="hit"\} 5\n/);
  t.match(scraped, /x_total\{result="miss"\} 3\n/);
  hit.inc();
  scraped = await registry.metrics();
  t.match(scraped, /x_total\{result="hit"\} 6\n/, 'counts after a scrape add to what was handed over');
  t.match(scraped, /x_total\{result="miss"\} 3\n/, 'a series counted once is not counted again');
  const json = await registry.getMetricsAsJSON();
  t.same(json[0]?.values.map((v) => [v.labels.result, v.value]).sort(), [['hit', 6], ['miss', 3]], 'JSON reads the same counts');
});
