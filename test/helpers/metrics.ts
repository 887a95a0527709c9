// Reading sample values out of a Prometheus text exposition (the admin listener's /metrics).
import { send } from './http.js';

/** Sum of the samples of `name` whose labels include `labels` (0 when there is none yet). */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(match[3]);
  }
  return sum;
}

/** Scrapes `adminUrl`/metrics and sums one metric's matching samples. */
export async function scrapeMetric(adminUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  return metricSum((await send(`${adminUrl}/metrics`)).body, name, labels);
}
