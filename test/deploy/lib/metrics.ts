// What a live gateway exports, read from its /metrics, and the label vocabulary of SPEC section 6:
// the ground truth that alert rules and dashboards are checked against, so a renamed metric or
// label breaks the test that uses it.
import { createMetrics } from '../../../src/admin/metrics.js';
import { send } from '../../helpers/http.js';

/** Every series name a scrape can contain: histograms expand to _bucket, _sum and _count. */
export async function liveMetricNames(adminUrl: string): Promise<Set<string>> {
  const res = await send(`${adminUrl}/metrics`);
  if (res.status !== 200) throw new Error(`GET ${adminUrl}/metrics answered ${res.status}`);
  const names = new Set<string>();
  for (const m of res.body.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [name = '', type = ''] = [m[1], m[2]];
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    else if (type === 'summary') for (const suffix of ['', '_sum', '_count']) names.add(name + suffix);
    else names.add(name);
  }
  return names;
}

/** Label names each gateway_* series carries (from the registry the gateway builds). */
export function declaredLabels(): Map<string, Set<string>> {
  const { registry } = createMetrics({ collectDefaults: false });
  const out = new Map<string, Set<string>>();
  for (const metric of registry.getMetricsAsArray()) {
    const { name, labelNames = [], type } = metric as unknown as { name: string; labelNames?: string[]; type: string };
    const isHistogram = type === 'histogram';
    const names = isHistogram ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name];
    for (const n of names) out.set(n, new Set([...labelNames, ...(n.endsWith('_bucket') ? ['le'] : [])]));
  }
  return out;
}

/** Label values SPEC section 6 and the README promise (closed sets). */
export const LABEL_VALUES: Record<string, string[]> = {
  result: ['hit', 'miss'],
  outcome: ['valid', 'missing', 'invalid', 'expired', 'revoked', 'success', 'failure', 'throttled', 'error'],
  store: ['redis', 'postgres'],
  operation: ['get_session', 'find_user'],
  status_class: ['1xx', '2xx', '3xx', '4xx', '5xx'],
  kind: ['session', 'reset'],
  method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'OTHER'],
};

/** Labels Prometheus adds at scrape time. */
export const TARGET_LABELS = ['job', 'instance'];
