// Just enough PromQL reading for tests: the metric names an expression selects and the label
// matchers it applies, so alert rules and dashboards can be held to the metrics the gateway
// exports. Not a parser: it removes what cannot be a metric name (strings, ranges, grouping
// clauses, function calls, keywords) and reads what remains.

export interface Matcher {
  metric: string | null;
  label: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'and', 'or', 'unless', 'inf', 'nan', 'Inf', 'NaN']);

/** Metric names selected by an expression, e.g. `gateway_logins_total`. */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\boffset\s+\S+/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const name = m[1] ?? '';
    if (m[2] || KEYWORDS.has(name) || /^\d/.test(name)) continue;
    names.add(name);
  }
  return [...names];
}

/** Label matchers of every selector, with the metric they apply to (null for `{__name__=…}` forms). */
export function labelMatchers(expr: string): Matcher[] {
  const out: Matcher[] = [];
  for (const sel of expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}/g)) {
    for (const m of (sel[2] ?? '').matchAll(/([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)) {
      out.push({ metric: sel[1] ?? null, label: m[1] ?? '', op: m[2] as Matcher['op'], value: m[3] ?? '' });
    }
  }
  return out;
}
