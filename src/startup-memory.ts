// Start-up leaves V8's young generation two to four times the size a bare fastify proxy runs with:
// V8 grows it while what it collects keeps surviving, and loading the gateway's modules is exactly
// that. Once grown it stays so through the first minutes of load (and 25 s idle, measured), so every
// replica would carry 16–48 MiB more than it needs (docs/operations.md, "Memory"). One
// memory-reducing full collection after start-up, before listening, shrinks it; V8 then regrows it
// as the requests need. Under sustained load V8 may grow it back: `--max-semi-space-size=8` on the
// command line (the image's entrypoint) is what bounds it for good.
//
// Node offers that collection only through V8's `gc` extension, exposed here for one new context
// and withdrawn again at once (the same way test runners read heap usage); the main context never
// gets a global `gc`. Where a Node version no longer offers it, nothing happens.
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type GcExtension = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/** The young generation's current size (both semi-spaces), in bytes. */
export function youngGenerationBytes(): number {
  return getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size ?? 0;
}

/**
 * A full collection that also shrinks the young generation. Returns its size before and after and
 * how long it took, or null when this Node offers no such collection.
 */
export function releaseStartUpMemory(): { beforeBytes: number; afterBytes: number; ms: number } | null {
  const beforeBytes = youngGenerationBytes();
  let gc: unknown;
  try {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('typeof gc === "function" ? gc : null');
  } catch {
    return null;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
  if (typeof gc !== 'function') return null;
  const started = performance.now();
  // 'last-resort' is the flavour that reduces memory (a plain major collection keeps the sizes).
  (gc as GcExtension)({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  return { beforeBytes, afterBytes: youngGenerationBytes(), ms: performance.now() - started };
}
