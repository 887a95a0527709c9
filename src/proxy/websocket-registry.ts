// Every open proxied WebSocket, by the session it was opened with, so that a session ending ends
// its sockets too. An HTTP request is checked once; a socket lives on, so it is checked again:
// - at once, when the session manager hears that a session ended on any replica (pub/sub), or
//   that its cache was flushed because invalidations may have been missed;
// - every revalidation interval, which also catches sessions that simply expired.
import type { SessionManager } from '../session/manager.js';

/** Sessions checked at once per revalidation round. */
const REVALIDATE_BATCH = 32;

/** Why a socket ended, as counted in gateway_websocket_closes_total. */
export type CloseReason = 'client' | 'upstream' | 'session_ended' | 'store_unavailable' | 'shutdown' | 'unresponsive' | 'protocol_error';

/** RFC 6455 section 7.4.1 codes the gateway sends itself. */
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_POLICY_VIOLATION = 1008;
export const CLOSE_TRY_AGAIN_LATER = 1013;

export interface OpenSocket {
  /** The session it was opened with; null on a public path (nothing to revoke). */
  readonly session: { idHash: string; cookieValue: string } | null;
  /** Set when the client sent something since the last check: that is activity, like a request. */
  active: boolean;
  /** Closes both sides with this code; a no-op once closing. */
  end(code: number, text: string, reason: CloseReason): void;
  /** Called once per interval: ping the client, and give up on one that never answered the last ping. */
  heartbeat(): void;
}

export interface WebSocketRegistry {
  add(socket: OpenSocket): void;
  remove(socket: OpenSocket): void;
  readonly size: number;
  /** Ends every socket (SIGTERM) and resolves once all have gone. */
  closeAll(): Promise<void>;
  /** Stops the interval timer. */
  stop(): void;
}

export interface RegistryOptions {
  sessions: SessionManager;
  revalidateIntervalMs: number;
  onError?(err: unknown): void;
}

export function createWebSocketRegistry(options: RegistryOptions): WebSocketRegistry {
  const { sessions, revalidateIntervalMs } = options;
  const all = new Set<OpenSocket>();
  const bySession = new Map<string, Set<OpenSocket>>();
  const drained: Array<() => void> = [];
  let revalidating = false;
  let again = false;

  const endSession = (idHash: string) => {
    const sockets = bySession.get(idHash);
    if (!sockets) return;
    for (const socket of [...sockets]) socket.end(CLOSE_POLICY_VIOLATION, 'session ended', 'session_ended');
  };

  /**
   * One validation per session, however many sockets it has open. Never two rounds at once; a
   * round asked for meanwhile (a cache reset) runs again right after, on the fresh cache.
   */
  const revalidate = async () => {
    if (revalidating) {
      again = true;
      return;
    }
    revalidating = true;
    try {
      do {
        again = false;
        // In batches: after a cache flush every check is a Redis read, and thousands at once
        // would queue in front of the HTTP requests' own lookups.
        const groups = [...bySession.values()].map((sockets) => [...sockets]);
        for (let i = 0; i < groups.length; i += REVALIDATE_BATCH) await Promise.all(groups.slice(i, i + REVALIDATE_BATCH).map(revalidateGroup));
      } while (again);
    } finally {
      revalidating = false;
    }
  };

  const revalidateGroup = async (sockets: OpenSocket[]) => {
    const first = sockets[0];
    if (!first?.session) return;
    const touch = sockets.some((s) => s.active);
    for (const socket of sockets) socket.active = false;
    try {
      const validation = await sessions.validate(first.session.cookieValue, { touch });
      if (validation.outcome === 'valid') return;
      for (const socket of sockets) socket.end(CLOSE_POLICY_VIOLATION, 'session ended', 'session_ended');
    } catch (err) {
      // Fail closed like an HTTP request would (503), unless GATEWAY_STALE_SESSION_GRACE let the
      // manager answer from its cache.
      options.onError?.(err);
      for (const socket of sockets) socket.end(CLOSE_TRY_AGAIN_LATER, 'session store unavailable', 'store_unavailable');
    }
  };

  sessions.onInvalidation((event) => {
    if (event.kind === 'session') endSession(event.idHash);
    else void revalidate();
  });

  const timer = setInterval(() => {
    for (const socket of all) socket.heartbeat();
    void revalidate();
  }, revalidateIntervalMs);
  timer.unref();

  return {
    add(socket) {
      all.add(socket);
      if (!socket.session) return;
      let group = bySession.get(socket.session.idHash);
      if (!group) bySession.set(socket.session.idHash, (group = new Set()));
      group.add(socket);
    },
    remove(socket) {
      all.delete(socket);
      const idHash = socket.session?.idHash;
      const group = idHash === undefined ? undefined : bySession.get(idHash);
      if (group && idHash !== undefined) {
        group.delete(socket);
        if (group.size === 0) bySession.delete(idHash);
      }
      if (all.size === 0) drained.splice(0).forEach((resolve) => resolve());
    },
    get size() {
      return all.size;
    },
    closeAll() {
      if (all.size === 0) return Promise.resolve();
      const done = new Promise<void>((resolve) => drained.push(resolve));
      for (const socket of [...all]) socket.end(CLOSE_GOING_AWAY, 'server shutting down', 'shutdown');
      return done;
    },
    stop() {
      clearInterval(timer);
    },
  };
}
