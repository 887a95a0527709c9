// Preloaded into a target by `PROFILE_GC=true node bench/profile.mjs` (node --import): V8's own
// record of every garbage collection (perf_hooks 'gc' entries) over the measured run only, so
// start-up and warm-up collections do not count. The first SIGUSR2 starts counting, the second
// writes { kind: { count, ms } } and the young generation's size at both ends to GC_PROFILE_FILE. Not part of the gateway.
import { writeFileSync } from 'node:fs';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';

const KINDS = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental marking',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak callbacks',
};
const youngMiB = () => getHeapSpaceStatistics().find((space) => space.space_name === 'new_space').space_size / 1048576;
let totals = null;
const observer = new PerformanceObserver((list) => {
  if (totals === null) return;
  for (const entry of list.getEntries()) {
    const kind = KINDS[entry.detail?.kind] ?? 'other';
    const t = (totals[kind] ??= { count: 0, ms: 0 });
    t.count += 1;
    t.ms += entry.duration;
  }
});
observer.observe({ entryTypes: ['gc'] });
process.on('SIGUSR2', () => {
  if (totals === null) {
    totals = { 'young generation MiB at start': youngMiB() };
    return;
  }
  // Entries are delivered after the collection: let the last ones arrive.
  totals['young generation MiB at end'] = youngMiB();
  setTimeout(() => writeFileSync(process.env.GC_PROFILE_FILE, JSON.stringify(totals)), 200);
});
