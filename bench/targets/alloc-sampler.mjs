// Preloaded into a target by `PROFILE_ALLOC=true node bench/profile.mjs` (node --import): V8's
// sampling heap profiler, counting objects already collected too (so it measures what is
// allocated, not what stays). The first SIGUSR2 starts it, the second writes the profile to
// ALLOC_PROFILE_FILE. Not part of the gateway.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const session = new Session();
session.connect();
let sampling = false;
process.on('SIGUSR2', () => {
  if (!sampling) {
    sampling = true;
    session.post('HeapProfiler.startSampling', { samplingInterval: 512, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    return;
  }
  session.post('HeapProfiler.stopSampling', (err, result) => {
    writeFileSync(process.env.ALLOC_PROFILE_FILE, err ? JSON.stringify({ error: err.message }) : JSON.stringify(result.profile));
  });
});
