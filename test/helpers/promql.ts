// Just enough PromQL and Prometheus-text reading to check that a dashboard or rule file only asks
// for series the gateway really exports. Not a full PromQL parser: it finds the vector selectors
// (metric name + label matchers) and the label lists of by/without/on/ignoring/group_*.

export interface Selector {
  metric: string;
  /** Label names used in the selector's matchers, e.g. ['instance', 'result']. */
  labels: string[];
}

export interface QueryRefs {
  selectors: Selector[];
  /** Label names in grouping and vector-matching clauses. */
  groupingLabels: string[];
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan']);
const LABEL_LIST_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const MATCHER = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g;

/** Label names of a `{a="x", b=~"y"}` block (the braces included). */
function matcherLabels(block: string): string[] {
  return [...block.matchAll(MATCHER)].map((m) => m[1] as string);
}

/** From `start` (an opening bracket), the index just past its matching close, skipping strings. */
function skipBracket(expr: string, start: number, open: string, close: string): number {
  let depth = 0;
  for (let i = start; i < expr.length; i++) {
    const c = expr[i];
    if (c === '"') {
      i = skipString(expr, i) - 1;
    } else if (c === open) {
      depth++;
    } else if (c === close && --depth === 0) {
      return i + 1;
    }
  }
  throw new Error(`unbalanced ${open} in: ${expr}`);
}

function skipString(expr: string, start: number): number {
  for (let i = start + 1; i < expr.length; i++) {
    if (expr[i] === '\\') i++;
    else if (expr[i] === '"') return i + 1;
  }
  throw new Error(`unterminated string in: ${expr}`);
}

function skipSpace(expr: string, i: number): number {
  while (i < expr.length && /\s/.test(expr[i] as string)) i++;
  return i;
}

export function queryRefs(expr: string): QueryRefs {
  const selectors: Selector[] = [];
  const groupingLabels: string[] = [];
  let i = 0;
  while (i < expr.length) {
    const c = expr[i] as string;
    if (c === '"') {
      i = skipString(expr, i);
    } else if (c === '[') {
      i = skipBracket(expr, i, '[', ']'); // range or subquery: durations and Grafana's $__rate_interval
    } else if (c === '{') {
      throw new Error(`selector without a metric name in: ${expr}`);
    } else if (/[0-9.]/.test(c)) {
      i += /^[0-9.]+(?:[eE][-+]?[0-9]+)?/.exec(expr.slice(i))?.[0].length ?? 1;
    } else if (/[a-zA-Z_:]/.test(c)) {
      const word = (/^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(expr.slice(i)) as RegExpExecArray)[0];
      i += word.length;
      const next = skipSpace(expr, i);
      if (LABEL_LIST_KEYWORDS.has(word) && expr[next] === '(') {
        const end = skipBracket(expr, next, '(', ')');
        groupingLabels.push(...expr.slice(next + 1, end - 1).split(',').map((s) => s.trim()).filter(Boolean));
        i = end;
      } else if (KEYWORDS.has(word) || expr[next] === '(' || /^(by|without)\s*\(/.test(expr.slice(next))) {
        // an operator keyword, a function, or an aggregation (`sum by (x) (...)` included)
      } else if (expr[next] === '{') {
        const end = skipBracket(expr, next, '{', '}');
        selectors.push({ metric: word, labels: matcherLabels(expr.slice(next, end)) });
        i = end;
      } else {
        selectors.push({ metric: word, labels: [] });
      }
    } else {
      i++;
    }
  }
  return { selectors, groupingLabels };
}

export interface MetricFamily {
  type: string;
  /** Sample name (e.g. x_bucket) -> label names seen on its samples. */
  samples: Map<string, Set<string>>;
}

/** Families of a Prometheus text exposition, keyed by family name (from the # TYPE lines). */
export function parseExposition(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) families.set(m[1] as string, { type: m[2] as string, samples: new Map() });
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+\S+$/.exec(line);
    if (!m) continue;
    const name = m[1] as string;
    const family = families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ''));
    if (!family) continue;
    const labels = family.samples.get(name) ?? new Set<string>();
    for (const label of matcherLabels(m[2] ?? '')) labels.add(label);
    family.samples.set(name, labels);
  }
  return families;
}

/**
 * The family a series name in a query belongs to: `x_bucket` only for a histogram `x`,
 * `x_sum`/`x_count` for a histogram or summary `x`; a histogram's bare name is no series at all.
 */
export function familyOf(families: Map<string, MetricFamily>, name: string): MetricFamily | undefined {
  const direct = families.get(name);
  if (direct) return direct.type === 'histogram' ? undefined : direct;
  const suffix = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (!suffix) return undefined;
  const base = families.get(suffix[1] as string);
  if (!base) return undefined;
  if (suffix[2] === 'bucket') return base.type === 'histogram' ? base : undefined;
  return base.type === 'histogram' || base.type === 'summary' ? base : undefined;
}
