// In-process session store for the embedded default mode (one process, nothing to share).
// Same contract as the Redis store, including TTLs and the per-user index.
import type { InvalidationListener, SessionRecord, SessionStore, StoredSession } from './types.js';

interface Entry {
  record: SessionRecord;
  /** Epoch ms after which the entry is gone, like a Redis TTL. */
  deadline: number;
}

const SWEEP_INTERVAL_MS = 60_000;

export function createMemorySessionStore(options: { now?: () => number } = {}): SessionStore {
  const now = options.now ?? Date.now;
  const sessions = new Map<string, Entry>();
  const byUser = new Map<string, Set<string>>();
  const listeners: InvalidationListener[] = [];

  const live = (idHash: string): Entry | null => {
    const entry = sessions.get(idHash);
    if (!entry) return null;
    if (entry.deadline > now()) return entry;
    remove(idHash, entry.record.user);
    return null;
  };
  const remove = (idHash: string, user: string): boolean => {
    const existed = sessions.delete(idHash);
    const index = byUser.get(user);
    index?.delete(idHash);
    if (index && index.size === 0) byUser.delete(user);
    return existed;
  };
  const announce = (idHash: string) => listeners.forEach((l) => l({ kind: 'session', idHash }));

  // Expired entries nobody asks for again would otherwise stay forever.
  const sweeper = setInterval(() => {
    for (const [idHash, entry] of sessions) if (entry.deadline <= now()) remove(idHash, entry.record.user);
  }, SWEEP_INTERVAL_MS);
  sweeper.unref();

  return {
    kind: 'memory',
    async create(idHash, record, ttlMs) {
      sessions.set(idHash, { record: { ...record }, deadline: now() + ttlMs });
      let index = byUser.get(record.user);
      if (!index) byUser.set(record.user, (index = new Set()));
      index.add(idHash);
    },
    async get(idHash) {
      const entry = live(idHash);
      return entry ? { ...entry.record } : null;
    },
    async touch(idHash, record, ttlMs) {
      if (!live(idHash)) return false;
      sessions.set(idHash, { record: { ...record }, deadline: now() + ttlMs });
      return true;
    },
    async delete(idHash, user) {
      const existed = live(idHash) !== null && remove(idHash, user);
      announce(idHash);
      return existed;
    },
    async listByUser(user) {
      const result: StoredSession[] = [];
      for (const idHash of byUser.get(user) ?? []) {
        const entry = live(idHash);
        if (entry) result.push({ idHash, record: { ...entry.record } });
      }
      return result;
    },
    async deleteByUser(user) {
      let count = 0;
      for (const idHash of [...(byUser.get(user) ?? [])]) {
        if (live(idHash) && remove(idHash, user)) count++;
        announce(idHash);
      }
      return count;
    },
    async endOldest(user, keep) {
      // Single-threaded: nothing can interleave, so this is atomic as the Redis script is. Same
      // order as the Redis index: by max-lifetime end (sign-in time), then by id hash.
      const sessionsOfUser = [...(byUser.get(user) ?? [])]
        .map((idHash) => ({ idHash, entry: live(idHash) }))
        .filter((s): s is { idHash: string; entry: Entry } => s.entry !== null)
        .sort((a, b) => a.entry.record.expiresAt - b.entry.record.expiresAt || (a.idHash < b.idHash ? -1 : a.idHash > b.idHash ? 1 : 0));
      const ended = sessionsOfUser.slice(0, Math.max(0, sessionsOfUser.length - keep)).map((s) => s.idHash);
      for (const idHash of ended) {
        remove(idHash, user);
        announce(idHash);
      }
      return ended;
    },
    async ping() {},
    invalidationsLive: () => true,
    onInvalidation(listener) {
      listeners.push(listener);
    },
    async close() {
      clearInterval(sweeper);
    },
  };
}
