// Every error the gateway raises on purpose, declared once with a stable code and HTTP status.
// The cause is kept for logs; the message is what a client may see.

export class GatewayError extends Error {
  readonly code: string;
  readonly statusCode: number;
  /** Response headers that belong to the refusal (`Retry-After`). */
  readonly headers: Readonly<Record<string, string>> | null;
  constructor(code: string, statusCode: number, message: string, options?: { cause?: unknown; headers?: Record<string, string> }) {
    super(message, options);
    this.name = 'GatewayError';
    this.code = code;
    this.statusCode = statusCode;
    this.headers = options?.headers ?? null;
  }
}

export const sessionStoreUnavailable = (cause: unknown) =>
  new GatewayError('GW_ERR_SESSION_STORE_UNAVAILABLE', 503, 'The session store is unavailable; try again shortly.', { cause });

export const userStoreUnavailable = (cause: unknown) =>
  new GatewayError('GW_ERR_USER_STORE_UNAVAILABLE', 503, 'Sign-in is temporarily unavailable; try again shortly.', { cause });

export const badPath = (reason: string) => new GatewayError('GW_ERR_BAD_PATH', 400, `Bad request path: ${reason}.`);

export const badDestination = (reason: string) => new GatewayError('GW_ERR_BAD_DESTINATION', 400, `Bad request: ${reason}.`);

export const badRequestBody = (reason: string) => new GatewayError('GW_ERR_BAD_BODY', 400, `Bad request: a body the gateway could not read for the method or paths it names (${reason}).`);

export const requestBodyTooLarge = (reason: string) =>
  new GatewayError('GW_ERR_BODY_TOO_LARGE', 413, `Too large: at this path the gateway reads a WebDAV request's body for the paths it names, and reads no more (${reason}).`);

export const unreadableBodyEncoding = (encoding: string) =>
  new GatewayError('GW_ERR_BODY_ENCODING', 415, `Unsupported: at this path the gateway reads the request body for the method or paths it names, and cannot read one with Content-Encoding ${encoding}.`);

export const badHost = (reason: string) => new GatewayError('GW_ERR_BAD_HOST', 400, `Bad request: ${reason}.`);

export const upstreamUnavailable = (cause: unknown) =>
  new GatewayError('GW_ERR_UPSTREAM_UNAVAILABLE', 502, 'The application is not answering.', { cause });

export const upstreamTimeout = (cause: unknown) =>
  new GatewayError('GW_ERR_UPSTREAM_TIMEOUT', 504, 'The application took too long to answer.', { cause });

export const accessDenied = () => new GatewayError('GW_ERR_ACCESS_DENIED', 403, 'You do not have access to this page.');

export const methodNotAllowed = () => new GatewayError('GW_ERR_METHOD_NOT_ALLOWED', 405, 'This method is not allowed.');

export const badWebSocketHandshake = (status: 400 | 405 | 426, reason: string) =>
  new GatewayError('GW_ERR_BAD_WEBSOCKET_HANDSHAKE', status, `Bad WebSocket handshake: ${reason}.`);

export const unsupportedUpgrade = () =>
  new GatewayError('GW_ERR_UNSUPPORTED_UPGRADE', 400, 'Only WebSocket upgrades are supported on requests with a body.');

export const crossOriginWebSocket = () =>
  new GatewayError('GW_ERR_CROSS_ORIGIN_WEBSOCKET', 403, 'A WebSocket with a session must be opened from this site.');

export const upstreamRefusedUpgrade = (status: number) =>
  new GatewayError('GW_ERR_UPSTREAM_REFUSED_UPGRADE', status, 'The application refused the WebSocket connection.');

export const shuttingDown = () => new GatewayError('GW_ERR_SHUTTING_DOWN', 503, 'The gateway is shutting down; try again shortly.');

/** HTTP Basic checks refused by the sign-in throttle (the login form's budget). */
export const tooManySignInAttempts = (retryAfterSeconds: number) =>
  new GatewayError('GW_ERR_TOO_MANY_ATTEMPTS', 429, 'Too many failed sign-in attempts. Try again later.', { headers: { 'retry-after': String(retryAfterSeconds) } });

/** A password check shed because too many are waiting for a hash (users/concurrency.ts). */
export const signInBusy = (retryAfterSeconds: number) =>
  new GatewayError('GW_ERR_SIGN_IN_BUSY', 503, 'Too many sign-ins at once. Please try again in a few seconds.', { headers: { 'retry-after': String(retryAfterSeconds) } });
