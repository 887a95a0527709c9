// How a session is shown to operators, the same in `sessions list` (one JSON line each) and the
// admin API's `GET /sessions/<user>` (a JSON list): a prefix of the id's hash, never the id.
import type { StoredSession } from './types.js';

export interface SessionSummary {
  /** The first 12 characters of the id's hash: enough to tell sessions apart, useless as a cookie. */
  id: string;
  user: string;
  created: string;
  lastSeen: string;
  expires: string;
}

export function summariseSession({ idHash, record }: StoredSession): SessionSummary {
  return {
    id: idHash.slice(0, 12),
    user: record.user,
    created: new Date(record.createdAt).toISOString(),
    lastSeen: new Date(record.touchedAt).toISOString(),
    expires: new Date(record.expiresAt).toISOString(),
  };
}
