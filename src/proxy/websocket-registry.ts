// Every open proxied WebSocket, by the credential it was opened with (a session, an API token,
// HTTP Basic), so that a credential ending ends its sockets too. An HTTP request is checked once; a
// socket lives on, so it is checked again:
// - at once, when the session manager hears that a session ended on any replica (pub/sub), or a
//   token was revoked (`t:<hash>` on the same channel), or that its cache was flushed because
//   invalidations may have been missed;
// - at once for a user's token and Basic sockets when the user changed (`u:<user>`: password,
//   disabled, deleted): checked again, closed if no longer valid;
// - every revalidation interval, which also catches sessions and tokens that simply expired.
import type { SessionManager } from '../session/manager.js';

/** Sessions checked at once per revalidation round. */
const REVALIDATE_BATCH = 32;

/** Why a socket ended, as counted in gateway_websocket_closes_total. */
export type CloseReason = 'client' | 'upstream' | 'session_ended' | 'store_unavailable' | 'shutdown' | 'unresponsive' | 'protocol_error';

/** RFC 6455 section 7.4.1 codes the gateway sends itself. */
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_POLICY_VIOLATION = 1008;
export const CLOSE_TRY_AGAIN_LATER = 1013;

/** A token revoked, a user changed (password, disabled, deleted), or the channel back after a drop. */
export type CredentialInvalidation = { kind: 'token'; tokenHash: string } | { kind: 'user'; user: string } | { kind: 'reset' };

/** What a socket was opened with, checked again for as long as it lives. */
export interface SocketCredential {
  /**
   * One check per credential per round, and the name an invalidation uses: a session's id hash,
   * a token's `t:<token hash>`, Basic's `b:<keyed hash>` (the principal's idHash).
   */
  readonly key: string;
  readonly user: string;
  /** Whether it is still valid; rejects when a store cannot answer. `touch`: the socket was active (a session's idle timeout rolls). */
  stillValid(touch: boolean): Promise<boolean>;
}

export interface OpenSocket {
  /** The credential it was opened with; null on a public path without one (nothing to revoke). */
  readonly credential: SocketCredential | null;
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
  sessions: Pick<SessionManager, 'onInvalidation'>;
  /** Token and user invalidations (tokens/invalidation.ts, which fits this by shape); absent without tokens or Basic. */
  credentials?: { onInvalidation(listener: (event: CredentialInvalidation) => void): void };
  revalidateIntervalMs: number;
  onError?(err: unknown): void;
}

export function createWebSocketRegistry(options: RegistryOptions): WebSocketRegistry {
  const { sessions, revalidateIntervalMs } = options;
  const all = new Set<OpenSocket>();
  const byCredential = new Map<string, Set<OpenSocket>>();
  const drained: Array<() => void> = [];
  let revalidating = false;
  let again = false;

  const endCredential = (key: string) => {
    const sockets = byCredential.get(key);
    if (!sockets) return;
    for (const socket of [...sockets]) socket.end(CLOSE_POLICY_VIOLATION, 'session ended', 'session_ended');
  };

  /**
   * One validation per credential, however many sockets it has open. Never two rounds at once; a
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
        const groups = [...byCredential.values()].map((sockets) => [...sockets]);
        for (let i = 0; i < groups.length; i += REVALIDATE_BATCH) await Promise.all(groups.slice(i, i + REVALIDATE_BATCH).map(revalidateGroup));
      } while (again);
    } finally {
      revalidating = false;
    }
  };

  const revalidateGroup = async (sockets: OpenSocket[]) => {
    const credential = sockets[0]?.credential;
    if (!credential) return;
    const touch = sockets.some((s) => s.active);
    for (const socket of sockets) socket.active = false;
    try {
      if (await credential.stillValid(touch)) return;
      for (const socket of sockets) socket.end(CLOSE_POLICY_VIOLATION, 'session ended', 'session_ended');
    } catch (err) {
      // Fail closed like an HTTP request would (503), unless GATEWAY_STALE_SESSION_GRACE let the
      // manager answer from its cache.
      options.onError?.(err);
      for (const socket of sockets) socket.end(CLOSE_TRY_AGAIN_LATER, 'session store unavailable', 'store_unavailable');
    }
  };

  sessions.onInvalidation((event) => {
    if (event.kind === 'session') endCredential(event.idHash);
    else void revalidate();
  });
  options.credentials?.onInvalidation((event) => {
    if (event.kind === 'token') endCredential(`t:${event.tokenHash}`);
    // After every listener of this event has run: the verifiers drop the user's cached entries in
    // theirs, and the check must not be answered from what they are about to forget.
    else if (event.kind === 'user') queueMicrotask(() => void revalidateUser(event.user));
    else void revalidate();
  });

  /** A user's password, or whether they may sign in at all, changed: their sockets are checked now. */
  const revalidateUser = async (user: string) => {
    const groups = [...byCredential.values()].filter((sockets) => sockets.values().next().value?.credential?.user === user);
    await Promise.all(groups.map((sockets) => revalidateGroup([...sockets])));
  };

  const timer = setInterval(() => {
    for (const socket of all) socket.heartbeat();
    void revalidate();
  }, revalidateIntervalMs);
  timer.unref();

  return {
    add(socket) {
      all.add(socket);
      if (!socket.credential) return;
      let group = byCredential.get(socket.credential.key);
      if (!group) byCredential.set(socket.credential.key, (group = new Set()));
      group.add(socket);
    },
    remove(socket) {
      all.delete(socket);
      const key = socket.credential?.key;
      const group = key === undefined ? undefined : byCredential.get(key);
      if (group && key !== undefined) {
        group.delete(socket);
        if (group.size === 0) byCredential.delete(key);
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
