// Cross-replica invalidation for tokens and cached Basic credentials. It rides on the session
// store's own invalidation channel (one pub/sub connection per replica, the same liveness and
// reset-on-reconnect rules): messages are `t:<token hash>` (one token revoked) and `u:<user>`
// (every token and cached password of a user: password changed, disabled, deleted). Session id
// hashes are base64url and never contain `:`, so the session caches ignore these messages.
import type { SessionStore } from '../session/types.js';

export type TokenInvalidationEvent = { kind: 'token'; tokenHash: string } | { kind: 'user'; user: string } | { kind: 'reset' };
export type TokenInvalidationListener = (event: TokenInvalidationEvent) => void;

export interface TokenInvalidation {
  /** False while messages may be missed (the channel is down): caches must not be trusted then. */
  live(): boolean;
  tokenRevoked(tokenHash: string): Promise<void>;
  userChanged(user: string): Promise<void>;
  onInvalidation(listener: TokenInvalidationListener): void;
}

export const tokenMessage = (tokenHash: string) => `t:${tokenHash}`;
export const userMessage = (user: string) => `u:${user}`;
/** The channel the Redis session store listens on (session/redis-store.ts). */
export const invalidationChannel = (redisPrefix: string) => `${redisPrefix}invalidate`;

export function parseMessage(message: string): TokenInvalidationEvent | null {
  if (message.startsWith('t:')) return { kind: 'token', tokenHash: message.slice(2) };
  if (message.startsWith('u:')) return { kind: 'user', user: message.slice(2) };
  return null;
}

/**
 * `publish` sends a message on the channel (Redis PUBLISH); null for the in-process store, where
 * this replica is the only one and messages are delivered here directly.
 */
export function createTokenInvalidation(store: Pick<SessionStore, 'onInvalidation' | 'invalidationsLive'>, publish: ((message: string) => Promise<unknown>) | null): TokenInvalidation {
  const listeners: TokenInvalidationListener[] = [];
  const emit = (event: TokenInvalidationEvent) => listeners.forEach((listener) => listener(event));
  if (publish) {
    store.onInvalidation((event) => {
      if (event.kind === 'reset') return emit(event);
      const parsed = parseMessage(event.idHash);
      if (parsed) emit(parsed);
    });
  }
  const send = async (message: string) => {
    // Here at once, everywhere else through the channel (this replica hears it again: harmless).
    const parsed = parseMessage(message);
    if (parsed) emit(parsed);
    if (publish) await publish(message);
  };
  return {
    live: () => store.invalidationsLive(),
    tokenRevoked: (tokenHash) => send(tokenMessage(tokenHash)),
    userChanged: (user) => send(userMessage(user)),
    onInvalidation: (listener) => void listeners.push(listener),
  };
}
