// The metrics recorded on every proxied request, kept out of prom-client's per-call work.
// prom-client's children bound with .labels() still hash their label values and build an object on
// every observe and inc (about 0.9 µs per observation in a tight loop, several µs on a busy
// gateway, by CPU profile). Here a series is bound once by its caller and recording is plain
// arithmetic; the registry, its formats and the metric names stay prom-client's.
import { Counter, type CounterConfiguration, type Metric, type Registry, type RegistryContentType } from 'prom-client';

/** One label set of a histogram, bound once: `observe` is a bucket search and three additions. */
export interface HistogramSeries {
  observe(value: number): void;
}

interface Series extends HistogramSeries {
  readonly labels: Readonly<Record<string, string>>;
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last, above every bound (+Inf). */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/** What prom-client's registry reads from a metric (its declared types name a numeric enum where it reads a string). */
export interface ExposedMetric {
  name: string;
  help: string;
  type: 'histogram';
  values: ExposedValue[];
  aggregator: 'sum';
}

interface ExposedValue {
  labels: Readonly<Record<string, string | number>>;
  sharedLabels?: Readonly<Record<string, string>>;
  value: number;
  metricName: string;
  exemplar?: null;
}

export interface BoundHistogramConfiguration<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  buckets: readonly number[];
  registers: Registry<RegistryContentType>[];
}

/**
 * A histogram that prom-client's registry exposes like its own (it formats what `getForPromString()`
 * and `get()` return, in the text and OpenMetrics formats and as JSON), recorded without
 * prom-client's per-call work.
 */
export class BoundHistogram<L extends string> {
  readonly type = 'histogram';
  /** How prom-client's cluster aggregation would merge workers (as for its own histograms). */
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  readonly #bounds: readonly number[];
  /** Keyed by the label values joined with a character no value here holds (built per series() call: callers bind once). */
  readonly #series = new Map<string, Series>();

  constructor(config: BoundHistogramConfiguration<L>) {
    this.name = config.name;
    this.help = config.help;
    this.labelNames = config.labelNames;
    this.#bounds = [...config.buckets].sort((a, b) => a - b);
    // The registry's type names prom-client's classes; it reads only name, type, aggregator and the two getters.
    for (const registry of config.registers) registry.registerMetric(this as unknown as Metric);
  }

  /** The series for these label values, in the order of labelNames: bind once, keep, observe. */
  series(...values: string[]): HistogramSeries {
    if (values.length !== this.labelNames.length) throw new Error(`${this.name}: expected ${this.labelNames.length} label values, got ${values.length}`);
    const key = values.join('\u0000');
    let found = this.#series.get(key);
    if (found === undefined) this.#series.set(key, (found = this.#newSeries(values)));
    return found;
  }

  /** One observation for a label set named by object: for paths too rare to bind (WebSocket handshakes). */
  observe(labels: Readonly<Record<L, string>>, value: number): void {
    this.series(...this.labelNames.map((name) => labels[name])).observe(value);
  }

  /** Forgets every series (as prom-client's reset). */
  reset(): void {
    this.#series.clear();
  }

  /** For the text formats: the registry prefers this to get(); `le` first, as prom-client writes it. */
  async getForPromString(): Promise<ExposedMetric> {
    const values: ExposedValue[] = [];
    for (const series of this.#series.values()) {
      let cumulative = 0;
      for (let i = 0; i <= this.#bounds.length; i++) {
        cumulative += series.counts[i]!;
        const le = i < this.#bounds.length ? this.#bounds[i]! : '+Inf';
        values.push({ labels: { le }, sharedLabels: series.labels, value: cumulative, metricName: `${this.name}_bucket`, exemplar: null });
      }
      values.push({ labels: {}, sharedLabels: series.labels, value: series.sum, metricName: `${this.name}_sum`, exemplar: undefined });
      values.push({ labels: {}, sharedLabels: series.labels, value: series.count, metricName: `${this.name}_count`, exemplar: undefined });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** For JSON: each value's labels in one object, as prom-client's get() gives them. */
  async get(): Promise<ExposedMetric> {
    const data = await this.getForPromString();
    data.values = data.values.map(({ labels, sharedLabels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } }));
    return data;
  }

  #newSeries(values: readonly string[]): Series {
    const { name } = this;
    const bounds = this.#bounds;
    const labels = Object.fromEntries(this.labelNames.map((label, i) => [label, values[i]!]));
    const series: Series = {
      labels,
      counts: new Float64Array(bounds.length + 1),
      sum: 0,
      count: 0,
      observe(value) {
        // prom-client refuses a value that is not a finite number; a clock can give no other here.
        if (!Number.isFinite(value)) throw new TypeError(`${name}: value is not a finite number: ${value}`);
        let i = 0;
        while (i < bounds.length && value > bounds[i]!) i++;
        series.counts[i]!++;
        series.sum += value;
        series.count++;
      },
    };
    return series;
  }
}

/** One label set of a counter, bound once: `inc` adds to a plain number. */
export interface CounterSeries {
  inc(): void;
}

/**
 * A prom-client Counter whose bound series count in plain numbers and hand their counts to
 * prom-client when it is read (its `collect` hook, run before every scrape): what is exposed is
 * always whole. `labels()` and `inc()` of prom-client's own still work beside them.
 */
export function countedOnRead<L extends string>(config: CounterConfiguration<L> & { labelNames: readonly L[] }): { counter: Counter<L>; series(...values: string[]): CounterSeries } {
  const pending: { child: ReturnType<Counter<L>['labels']>; count: number }[] = [];
  const counter = new Counter<L>({
    ...config,
    collect() {
      for (const series of pending) {
        if (series.count === 0) continue;
        series.child.inc(series.count);
        series.count = 0;
      }
    },
  });
  return {
    counter,
    series(...values) {
      const entry = { child: counter.labels(...values), count: 0 };
      pending.push(entry);
      return { inc: () => void entry.count++ };
    },
  };
}
